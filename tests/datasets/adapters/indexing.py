"""What the source and download stages do for a real dataset, as two library calls."""
from __future__ import annotations

from pathlib import Path

from segpipe import datasets


def index_then_download(name: str, raw: Path, **options) -> Path:
    """Index `name`'s source beside `raw` (as the source stage does), then fill `raw` from the index."""
    index = Path(raw).parent / "source.csv"
    datasets.index(name, index, owned=Path(raw).parent, **options)
    datasets.download(name, raw, index_file=index, **options)
    return raw
