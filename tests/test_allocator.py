"""retain_freed_memory: a step's freed arrays are reused without page faults (Linux/glibc)."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")

# One "training step": ten 4 MiB arrays alive at once, then all freed (forward caches,
# im2col matrices), repeated. Prints the minor page faults of ten steps after warm-up.
STEPS = """
import resource, sys
import numpy as np
from nablanet.utils.allocator import retain_freed_memory
tuned = retain_freed_memory() if sys.argv[1] == "tuned" else False
def step():
    arrays = [np.ones((4 << 20) // 8) for _ in range(10)]
    return sum(a[0] for a in arrays)
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(int(tuned), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True,
                         check=True).stdout.split()
    return bool(int(out[0])), int(out[1])


def test_freed_arrays_are_reused_without_page_faults():
    tuned, faults = page_faults("tuned")
    if not tuned:
        pytest.skip("this C library has no mallopt")
    _, untuned_faults = page_faults("default")
    # glibc's defaults trim the freed heap top each step: ~10 × 10 × 1 024 faults.
    assert untuned_faults > 10_000
    assert faults < 1_000


def test_is_idempotent():
    from nablanet.utils.allocator import retain_freed_memory
    assert retain_freed_memory() == retain_freed_memory()
