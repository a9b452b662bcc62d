"""TorchServe 0.12 serving the same network: 2 workers, batches of up to 32 gathered for
up to 5 ms (the batching its docs recommend), on /predictions/convlens.

    python -m benchmarks.servers.torchserve_server 8104

Needs Java (Debian: default-jre-headless) and `pip install torchserve torch-model-archiver`.
Builds the model archive in a temporary directory and runs TorchServe in the foreground.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from convlens.app.config import Settings

HERE = Path(__file__).resolve().parent


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8104
    workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
    store = Path(tempfile.mkdtemp(prefix="convlens-torchserve-"))
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [
            str(bin_dir / "torch-model-archiver"),
            "--model-name", "convlens",
            "--version", "1.0",
            "--handler", str(HERE / "torchserve_handler.py"),
            "--export-path", str(store),
        ],
        check=True,
    )  # fmt: skip
    models = {
        "convlens": {
            "1.0": {
                "defaultVersion": True,
                "marName": "convlens.mar",
                "minWorkers": workers,
                "maxWorkers": workers,
                "batchSize": 32,
                "maxBatchDelay": 5,
                "responseTimeout": 60,
            }
        }
    }
    config = store / "config.properties"
    config.write_text(
        f"inference_address=http://127.0.0.1:{port}\n"
        f"management_address=http://127.0.0.1:{port + 100}\n"
        f"metrics_address=http://127.0.0.1:{port + 200}\n"
        f"model_store={store}\n"
        "load_models=convlens.mar\n"
        f"models={json.dumps(models)}\n"
        "disable_token_authorization=true\n"
        "enable_metrics_api=false\n"
        "default_workers_per_model=2\n"
        "number_of_netty_threads=2\n"
        "job_queue_size=1000\n"
    )
    env = {
        **os.environ,
        "CONVLENS_WEIGHTS_FILE": str(Settings().model_dir("shipped") / "model.safetensors"),
        # TorchServe writes its logs (~100 MB per benchmark) into the working directory
        "LOG_LOCATION": str(store / "logs"),
        "METRICS_LOCATION": str(store / "logs"),
        "PYTHONPATH": str(HERE.parent.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    os.execve(
        str(bin_dir / "torchserve"),
        [str(bin_dir / "torchserve"), "--start", "--foreground", "--ncs", "--ts-config", str(config)],
        env,
    )


if __name__ == "__main__":
    main()
