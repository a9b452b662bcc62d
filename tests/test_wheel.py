"""`pip install .` gives one namespaced package that holds the weights and runs anywhere."""

import json
import subprocess
import sys
import zipfile

import pytest

from benchmarks.harness import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("convlens-*.whl"))


def test_the_wheel_holds_the_package_weights_cards_and_page(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names}
    assert tops == {"convlens", wheel.name.split("-py3")[0] + ".dist-info"}  # no bare app/ or model/
    for model in ("shipped", "article", "mlp"):
        assert f"convlens/weights/{model}/model.safetensors" in names
        assert f"convlens/weights/{model}/model_card.json" in names
    assert {"convlens/app/static/index.html", "convlens/app/main.py", "convlens/model/train.py"} <= names
    assert {"convlens/cli.py", "convlens/client.py"} <= names
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "convlens = convlens.cli:main" in entry


def test_installed_it_serves_the_packaged_weights_from_any_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
    )
    code = (
        "import importlib.util, convlens; from convlens.app.config import Settings;"
        "from convlens.app.core.registry import ModelRegistry;"
        "s = Settings(); r = ModelRegistry.load(s);"
        "import json; print(json.dumps([convlens.__file__, str(s.weights_dir), sorted(r.models),"
        " importlib.util.find_spec('app') is None, importlib.util.find_spec('model') is None]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(target)}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    file, weights, models, no_app, no_model = json.loads(out.stdout)
    assert file.startswith(str(target)) and weights == str(target / "convlens" / "weights")
    assert models == ["article", "mlp", "shipped"] and no_app and no_model
