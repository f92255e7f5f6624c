"""Every figure of every registered study renders from small data (issue 17, item 3).

The test iterates the registry `rgflow.studies.STUDIES`, so a study added later is covered
without editing this file. A study that defines `SMALL` (a full configuration, validated against
its `SCHEMA`, that runs in seconds) is rendered from it; a study without `SMALL` is rendered from
its quick profile and the test is marked slow.
"""

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from rgflow.app.reproduce import summary_status
from rgflow.studies import STUDIES
from rgflow.studies._config import validate


def _params():
    out = []
    for name in STUDIES:
        small = hasattr(STUDIES[name], "SMALL")
        out.append(pytest.param(name, id=name, marks=() if small else pytest.mark.slow))
    return out


@pytest.mark.parametrize("name", _params())
def test_every_figure_renders(name, tmp_path):
    study = STUDIES[name]
    config = getattr(study, "SMALL", None) or study.DEFAULTS["quick"]
    config = validate(study.SCHEMA, dict(config))
    results = study.run(config)
    assert results, f"{name}: no results"
    for stem, result in results.items():
        json.dumps(result)  # JSON-able
        files = study.plot(result, tmp_path / stem)
        pngs = [f for f in files if str(f).endswith(".png")]
        assert pngs and all(f.exists() for f in files)
        for f in pngs:
            assert f.stat().st_size > 10_000, f"{f.name} is nearly empty"
            img = mpimg.imread(f)
            assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
            # not a uniform image: many distinct colours, and a good share of non-white pixels
            rgb = img[..., :3].reshape(-1, 3)
            assert np.std(rgb) > 0.02, f"{f.name} is (nearly) uniform"
            assert np.mean(np.any(rgb < 0.9, axis=1)) > 0.01, f"{f.name} is (nearly) blank"
    for row in study.summary(config, results):
        assert len(row) in (3, 4, 5)
        # a 4th element must be "—", "ok" or "FAILED: ..."; an "ok" from a study that states
        # its checks (5-tuples) must name the rule it passed
        if summary_status(row) == "ok" and len(row) == 5:
            assert row[4] and not str(row[4]).startswith("none"), row


def test_summary_status_convention():
    assert summary_status(("q", "v", "e")) == "—"
    assert summary_status(("q", "v", "e", "ok")) == "ok"
    assert summary_status(("q", "v", "e", "—", "none: exact identity")) == "—"
    assert summary_status(("q", "v", "e", "ok", "|z| ≤ 4")) == "ok"
    assert summary_status(("q", "v", "e", "FAILED: χ²/dof = 40")) == "**FAILED: χ²/dof = 40**"
    with pytest.raises(ValueError, match="status"):
        summary_status(("q", "v", "e", "fine"))
