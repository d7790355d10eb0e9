"""The loader's translation unit: edgesim's headers inlined once each (so that bcc rewrites the map calls
in them), system headers left to clang, and compiler messages that still name the header and its line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgesim.bpf import loader
from edgesim.errors import EdgesimError
from tests.conftest import require_root


def test_every_local_header_is_inlined_once_and_system_headers_are_left() -> None:
    text = loader.translation_unit(loader.BPF_DIR / "xdp_edge.c")
    assert not re.search(r'^\s*#\s*include\s+"', text, re.M)
    assert "#include <uapi/linux/bpf.h>" in text
    starts = re.findall(r'^#line 1 "(.+)"$', text, re.M)
    assert len(starts) == len(set(starts))
    names = {Path(s).relative_to(loader.BPF_DIR).as_posix() for s in starts}
    assert {"xdp_edge.c", "ddos_maps.h", "lb_balance.h", "common/parsing.h", "common/hash.h"} <= names
    assert text.count("BPF_PERCPU_ARRAY(stats,") == 1


def test_a_header_error_names_the_header_and_its_line(tmp_path: Path) -> None:
    require_root()
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "broken.h").write_text("#ifndef B\n#define B\nint f(void) { return 0 }\n#endif\n")
    source = tmp_path / "main.c"
    source.write_text('#include <uapi/linux/bpf.h>\n#include "inc/broken.h"\nint xdp_x(void *c) {}\n')
    with pytest.raises(EdgesimError) as caught:
        loader.compile_program(source)
    assert f"{tmp_path / 'inc' / 'broken.h'}:3:" in str(caught.value)
