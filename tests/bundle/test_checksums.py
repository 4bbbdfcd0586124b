"""The sha256 of a bundle's files: recorded once, and any file that differs, is missing or was never recorded is
named before inference reads it."""
import hashlib

import pytest

from segpipe.bundle.checksums import record, verify
from segpipe.core.errors import InputError


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "models" / "unet").mkdir(parents=True)
    (tmp_path / "blend.json").write_text('{"counts": {"unet": 1}}\n')
    (tmp_path / "models" / "unet" / "fold0.safetensors").write_bytes(bytes(range(256)) * 64)
    return tmp_path


FILES = ["blend.json", "models/unet/fold0.safetensors"]


def test_each_file_is_recorded_by_its_sha256_and_verifies(bundle):
    recorded = record(bundle, FILES)
    assert recorded == {name: hashlib.sha256((bundle / name).read_bytes()).hexdigest() for name in FILES}
    verify(bundle, recorded, FILES)  # nothing raised


def test_a_changed_byte_names_the_file_and_both_digests(bundle):
    recorded = record(bundle, FILES)
    weights = bundle / "models" / "unet" / "fold0.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1  # one bit, inside a tensor: the file still loads
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"{weights}: its sha256 .* is not the one the bundle recorded "
                                         rf"\({recorded[FILES[1]][:12]}"):
        verify(bundle, recorded, FILES)


def test_a_missing_or_unrecorded_file_is_named(bundle):
    recorded = record(bundle, FILES)
    gone = "models/unet/fold1.safetensors"
    with pytest.raises(InputError, match=rf"{gone}: missing from the bundle; upload the bundle folder again"):
        verify(bundle, {**recorded, gone: "0" * 64}, [*FILES, gone])
    with pytest.raises(InputError, match=r"blend.json: the bundle records no sha256 of it"):
        verify(bundle, {FILES[1]: recorded[FILES[1]]}, FILES)
    with pytest.raises(InputError, match=r"records no sha256 of its files .*rebuild the bundle"):
        verify(bundle, None, FILES)  # a bundle from before checksums
