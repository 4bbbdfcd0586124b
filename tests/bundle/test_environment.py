import platform
from importlib import metadata

from packaging.requirements import Requirement

from segpipe.bundle import environment


def test_segpipes_declared_ranges_admit_the_versions_installed_here():
    assert {"torch", "torchvision", "numpy"} <= set(environment.supported())
    assert environment.outside_ranges() == []


def test_a_version_outside_the_range_is_named_with_the_range():
    torch = metadata.version("torch")
    ranges = {"torch": Requirement("torch<2.0"), "numpy": Requirement("numpy>=1")}
    assert environment.outside_ranges(("torch", "numpy"), ranges) == [f"torch {torch} (segpipe supports <2.0)"]


def test_the_environment_line_names_python_and_what_differs_from_the_bundles_build():
    line = environment.describe({"torch": "0.0.1", "numpy": metadata.version("numpy")})
    assert line.startswith(f"running on Python {platform.python_version()}: torch {metadata.version('torch')} "
                           "(bundle built with 0.0.1)")
    assert f"numpy {metadata.version('numpy')}," in line and "numpy" not in line.split("numpy", 1)[1].split(",")[0]
