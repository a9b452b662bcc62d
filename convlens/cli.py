"""The `convlens` command: serve, predict, read, feature-maps, train, evaluate, export.

Exit codes: 0 success; 1 a file or request failed (bad image, API error); 2 bad usage;
3 the server could not be reached; 4 the weights or data could not be loaded.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

OK, FAILED, USAGE, UNREACHABLE, UNLOADABLE = 0, 1, 2, 3, 4
VERDICT_WORDS = {"not_a_digit": "not a digit", "several_digits": "several digits (use read)"}


def _fail(message: str, code: int) -> None:
    click.echo(f"convlens: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="convlens")
def main() -> None:
    """Recognise handwritten digits and look inside the networks that do it."""


@main.command()
@click.option("--host", help="interface to listen on (default: CONVLENS_HOST / HOST, else 0.0.0.0)")
@click.option("--port", type=int, help="port (default: CONVLENS_PORT / PORT, else 8000)")
@click.option("--workers", type=int, help="worker processes (default: WEB_CONCURRENCY, else 2)")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API and the web page (what the Docker image runs)."""
    for name, value in (("CONVLENS_HOST", host), ("CONVLENS_PORT", port), ("CONVLENS_WORKERS", workers)):
        if value is not None:
            os.environ[name] = str(value)
    from convlens.app import serve as process

    process.main()


def _show(path: str, answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"file": path, **answer}))
    elif "error" in answer:
        click.echo(f"{path}: error {answer['error']['code']}: {answer['error']['message']}")
    else:
        verdict = answer.get("verdict")
        line = f"{path}: {answer['digit']} ({100 * answer['confidence']:.1f}%, {answer['model']})"
        if verdict and verdict != "digit":
            line += f" but {VERDICT_WORDS.get(verdict, verdict)}"
        if answer.get("reading"):
            line += f": {answer['reading']}"
        click.echo(line)


def _predict_remote(files: tuple[str, ...], url: str, model: str | None, as_json: bool) -> int:
    import httpx

    from convlens.client import Client, ConvlensError

    failed = 0
    try:
        with Client(url) as client:
            for path in files:
                try:
                    answer = client.predict(path, model).model_dump()
                except ConvlensError as e:
                    answer = {"error": {"code": e.code, "message": e.message}}
                    failed += 1
                    if e.code == "unknown_model":
                        _show(path, answer, as_json)
                        return USAGE
                except OSError as e:
                    answer = {"error": {"code": "unreadable_file", "message": str(e)}}
                    failed += 1
                _show(path, answer, as_json)
    except httpx.TransportError as e:
        _fail(f"cannot reach {url}: {e}", UNREACHABLE)
    return FAILED if failed else OK


def _predict_local(files: tuple[str, ...], model: str | None, as_json: bool) -> int:
    from convlens.app.api.v1.convert import to_prediction
    from convlens.app.config import Settings
    from convlens.app.core.errors import DomainError
    from convlens.app.core.pipeline import Scored
    from convlens.app.core.served_model import ServedModel, to_tensor
    from convlens.app.core.several import look_here
    from convlens.app.core.verdict import Judge
    from convlens.app.imaging.preprocess import open_image, preprocess
    from convlens.app.reading.cuts import CutScorer
    from convlens.model.checkpoint import CheckpointError

    settings = Settings()
    name = model or settings.default_model
    if name not in settings.models:
        _fail(f"unknown model {name!r}; choose from {', '.join(settings.models)}", USAGE)
    try:
        judge = Judge.load(settings.verdict_dir) if settings.verdict else None
        served = ServedModel.load(name, settings.model_dir(name), settings.precision, judge)
        cuts = CutScorer.load(settings.cuts_dir) if settings.second_look else None
    except CheckpointError as e:
        _fail(str(e), UNLOADABLE)
    failed = 0
    for path in files:
        try:
            start = time.perf_counter()
            data = Path(path).read_bytes()
            pre = preprocess(data, settings.max_pixels)
            t_pre = time.perf_counter() - start
            row = served.answer(to_tensor(pre.pixels))[0]
            # the very answer /v1/predict gives, built by the same functions
            scored = Scored.of(pre, row, t_pre, time.perf_counter() - start, served.judge)
            if settings.second_look:
                look = look_here(open_image(data, settings.max_pixels), scored.verdict, served, cuts)
                scored = replace(scored, verdict=look.verdict, reading=look.reading)
            answer: dict[str, Any] = to_prediction(scored, served).model_dump()
        except DomainError as e:
            answer, failed = {"error": {"code": e.code, "message": e.message}}, failed + 1
        except OSError as e:
            answer, failed = {"error": {"code": "unreadable_file", "message": str(e)}}, failed + 1
        _show(path, answer, as_json)
    return FAILED if failed else OK


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--url", help="a running server, e.g. http://127.0.0.1:8000 (default: in-process, shipped weights)")
@click.option("--model", help="shipped, article or mlp (default: the default model)")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per file")
def predict(files: tuple[str, ...], url: str | None, model: str | None, as_json: bool) -> None:
    """Predict the digit in each image FILE."""
    sys.exit(_predict_remote(files, url, model, as_json) if url else _predict_local(files, model, as_json))


def _show_reading(path: str, answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"file": path, **answer}))
    elif "error" in answer:
        click.echo(f"{path}: error {answer['error']['code']}: {answer['error']['message']}")
    else:
        numbers = " ".join(n["text"] for n in answer["numbers"])
        click.echo(f"{path}: {numbers or '(no numbers)'}" + (" (truncated)" if answer["truncated"] else ""))


def _read_remote(files: tuple[str, ...], url: str, model: str | None, as_json: bool) -> int:
    import httpx

    from convlens.client import Client, ConvlensError

    failed = 0
    try:
        with Client(url, timeout=120) as client:
            for path in files:
                try:
                    answer = client.read(path, model).model_dump()
                except ConvlensError as e:
                    answer, failed = {"error": {"code": e.code, "message": e.message}}, failed + 1
                    if e.code == "unknown_model":
                        _show_reading(path, answer, as_json)
                        return USAGE
                except OSError as e:
                    answer, failed = {"error": {"code": "unreadable_file", "message": str(e)}}, failed + 1
                _show_reading(path, answer, as_json)
    except httpx.TransportError as e:
        _fail(f"cannot reach {url}: {e}", UNREACHABLE)
    return FAILED if failed else OK


def _read_local(files: tuple[str, ...], model: str | None, as_json: bool) -> int:
    from convlens.app.api.v1.read import to_response
    from convlens.app.config import Settings
    from convlens.app.core.errors import DomainError
    from convlens.app.core.reader import read_here
    from convlens.app.core.served_model import ServedModel
    from convlens.app.core.verdict import Judge
    from convlens.app.imaging.preprocess import open_image
    from convlens.app.reading.cuts import CutScorer
    from convlens.model.checkpoint import CheckpointError

    settings = Settings()
    name = model or settings.default_model
    if name not in settings.models:
        _fail(f"unknown model {name!r}; choose from {', '.join(settings.models)}", USAGE)
    try:
        judge = Judge.load(settings.verdict_dir) if settings.verdict else None
        served = ServedModel.load(name, settings.model_dir(name), settings.precision, judge)
        cuts = CutScorer.load(settings.cuts_dir)
    except CheckpointError as e:
        _fail(str(e), UNLOADABLE)
    failed = 0
    for path in files:
        try:
            img = open_image(Path(path).read_bytes(), settings.max_pixels)
            answer: dict[str, Any] = to_response(read_here(img, served, cuts), served).model_dump()
        except DomainError as e:
            answer, failed = {"error": {"code": e.code, "message": e.message}}, failed + 1
        except OSError as e:
            answer, failed = {"error": {"code": "unreadable_file", "message": str(e)}}, failed + 1
        _show_reading(path, answer, as_json)
    return FAILED if failed else OK


@main.command()
@click.argument("photos", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--url", help="a running server, e.g. http://127.0.0.1:8000 (default: in-process, shipped weights)")
@click.option("--model", help="shipped, article or mlp (default: the default model)")
@click.option("--json", "as_json", is_flag=True, help="the full answer, one JSON object per photo")
def read(photos: tuple[str, ...], url: str | None, model: str | None, as_json: bool) -> None:
    """Read every number in each photo or scan: one line per photo, numbers in reading order."""
    sys.exit(_read_remote(photos, url, model, as_json) if url else _read_local(photos, model, as_json))


@main.command("feature-maps")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--layer", required=True, help="e.g. conv1, relu2, pool2")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="where the PNG goes")
@click.option("--url", help="a running server (default: in-process, shipped weights)")
@click.option("--model", help="shipped or article (the MLP has no feature maps)")
def feature_maps(file: str, layer: str, output: str, url: str | None, model: str | None) -> None:
    """Draw every channel of one layer's output for FILE as a PNG grid."""
    if url:
        import httpx

        from convlens.client import Client, ConvlensError

        try:
            with Client(url) as client:
                png = client.feature_map_png(file, layer, model)
        except ConvlensError as e:
            _fail(f"{file}: {e.code}: {e.message}", FAILED)
        except httpx.TransportError as e:
            _fail(f"cannot reach {url}: {e}", UNREACHABLE)
    else:
        png = _feature_map_local(file, layer, model)
    Path(output).write_bytes(png)
    click.echo(f"wrote {output}")


def _feature_map_local(file: str, layer: str, model: str | None) -> bytes:
    from convlens.app.config import Settings
    from convlens.app.core.errors import DomainError
    from convlens.app.core.served_model import ServedModel, to_tensor
    from convlens.app.imaging.preprocess import preprocess
    from convlens.app.imaging.render import feature_grid_png
    from convlens.model.checkpoint import CheckpointError

    settings = Settings()
    name = model or settings.default_model
    try:
        served = ServedModel.load(name, settings.model_dir(name), settings.precision)
    except (CheckpointError, FileNotFoundError) as e:
        _fail(str(e), UNLOADABLE)
    if layer not in served.feature_layers:
        _fail(f"model {name!r} has no layer {layer!r}; it has {', '.join(served.feature_layers) or 'none'}", USAGE)
    try:
        pre = preprocess(Path(file).read_bytes(), settings.max_pixels)
    except DomainError as e:
        _fail(f"{file}: {e.code}: {e.message}", FAILED)
    maps = served.features(to_tensor(pre.pixels), [layer])[layer][0].numpy()
    return feature_grid_png(maps, signed=served.signed_output(layer))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def train(ctx: click.Context) -> None:
    """Train a network (the options of python -m model.train; --help for them)."""
    from convlens.model.train import main as train_main

    sys.exit(train_main(ctx.args))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def evaluate(ctx: click.Context) -> None:
    """Measure weights on the MNIST test set (the options of python -m model.evaluate)."""
    from convlens.model.evaluate import main as evaluate_main

    sys.exit(evaluate_main(ctx.args))


@main.command()
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), default="onnx", show_default=True)
@click.option("--model", default="shipped", show_default=True, help="shipped, article or mlp")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
def export(fmt: str, model: str, output: str) -> None:
    """Export a network: [N, 1, 28, 28] ink in [0, 1] in, probabilities [N, 10] out."""
    from convlens.app.config import Settings
    from convlens.model.card import load_folder
    from convlens.model.checkpoint import CheckpointError
    from convlens.model.export import export as export_network

    settings = Settings()
    if model not in settings.models:
        _fail(f"unknown model {model!r}; choose from {', '.join(settings.models)}", USAGE)
    try:
        folder = load_folder(settings.model_dir(model))
    except CheckpointError as e:
        _fail(str(e), UNLOADABLE)
    temperature = float(folder.card.get("calibration", {}).get("temperature", 1.0))
    try:
        path = export_network(folder.network, Path(output), fmt, temperature)  # type: ignore[arg-type]
    except ImportError as e:
        _fail(f"ONNX export needs onnx and onnxscript (pip install 'convlens[export]'): {e}", UNLOADABLE)
    click.echo(f"wrote {path} ({fmt}, {model} {folder.version})")


if __name__ == "__main__":
    main()
