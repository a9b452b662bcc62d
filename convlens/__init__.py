"""convlens: the service (`convlens.app`), the network and its training (`convlens.model`),
a client (`convlens.client`) and the `convlens` command (`convlens.cli`).

Installed, `app/` and `model/` become `convlens/app` and `convlens/model` (see
pyproject.toml), so nothing named plainly `app` or `model` lands on the import path. In a
source checkout they sit beside this folder instead; the path below makes them
subpackages all the same, so the code imports `convlens.app...` and `convlens.model...`
in both cases.
"""

from pathlib import Path

_here = Path(__file__).resolve().parent
if not (_here / "app").is_dir():  # a source checkout: app/, model/ and weights/ are siblings
    __path__ = [str(_here), str(_here.parent)]
