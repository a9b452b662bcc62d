"""convlens: the service (`convlens.app`), the network and its training (`convlens.model`),
a client (`convlens.client`) and the `convlens` command (`convlens.cli`).

In a source checkout `app`, `model` and `weights` here are symbolic links to the folders of
those names at the top level, so every `convlens.app...` import names a file on disk that a
type checker or an IDE finds from the path alone. Installed, pyproject.toml maps the same
folders into the package; either way nothing named plainly `app` or `model` lands on the
import path.
"""
