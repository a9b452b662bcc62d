"""Save and load weights together with their recipe; used by training and serving.

The file is safetensors (no pickle is executed at load time); the `NetConfig` travels in
its metadata so the loader rebuilds exactly the network the weights belong to.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from convlens.model.net import ConvNet, NetConfig
from convlens.model.verdict_head import HeadConfig, VerdictHead

FORMAT = "convlens/1"


class CheckpointError(Exception):
    """The weights file is missing, corrupt, or does not match its recipe or card."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(model: ConvNet | VerdictHead, path: str | Path) -> str:
    """Write weights + config; returns the file's sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    # one metadata key: safetensors keeps metadata in a hash map, so with two keys their
    # order (and the file's sha256) would change from save to save
    metadata = {"convlens": json.dumps({"format": FORMAT, "config": model.config.to_dict()}, sort_keys=True)}
    save_file(state, str(path), metadata=metadata)
    path.chmod(0o644)  # safetensors writes 0600; a non-root server must read it
    return sha256_file(path)


def load_checkpoint(path: str | Path, expected_sha256: str | None = None) -> ConvNet:
    """Rebuild the network from a weights file, in eval mode."""
    model = _load(path, expected_sha256, "network")
    if not isinstance(model, ConvNet):
        raise CheckpointError(f"{path} holds a verdict head, not a network")
    return model


def load_head(path: str | Path, expected_sha256: str | None = None) -> VerdictHead:
    """Rebuild a verdict head (`model/verdict_head.py`) from its weights file, in eval mode."""
    model = _load(path, expected_sha256, "head")
    if not isinstance(model, VerdictHead):
        raise CheckpointError(f"{path} holds a network, not a verdict head")
    return model


def _load(path: str | Path, expected_sha256: str | None, what: str) -> ConvNet | VerdictHead:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise CheckpointError(
                f"weights file {path} has sha256 {actual[:12]}..., "
                f"the model card expects {expected_sha256[:12]}...: corrupt or mismatched"
            )
    try:
        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get("convlens", "{}"))
        if header.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a convlens checkpoint (no {FORMAT} metadata)")
        config = header["config"]
        model: ConvNet | VerdictHead
        if config.get("kind") == "verdict_head":
            model = VerdictHead(HeadConfig.from_dict(config))
        else:
            model = ConvNet(NetConfig.from_dict(config))
        model.load_state_dict(load_file(str(path)), strict=True)
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot load {what} weights {path}: {first}") from e
    model.eval()
    return model
