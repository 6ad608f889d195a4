"""`make screenshot`'s command line: which pictures it takes (taking them needs Chromium)."""

from __future__ import annotations

import pytest

from tools import screenshot


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pictures `main` would take, recorded instead of taken."""
    calls: list[str] = []
    for name in screenshot.PICTURES:
        monkeypatch.setitem(screenshot.PICTURES, name, lambda name=name: calls.append(name))
    return calls


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["lab", "drawing", "threshold"]),
        (["drawing"], ["drawing"]),
        (["lab"], ["lab"]),
        (["threshold", "lab"], ["lab", "threshold"]),
    ],
)
def test_main_takes_the_pictures_asked_for(
    taken: list[str], argv: list[str], expected: list[str]
) -> None:
    assert screenshot.main(argv) == 0
    assert taken == expected


def test_main_refuses_an_unknown_picture(taken: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        screenshot.main(["labb"])
    assert stopped.value.code == 2
    assert taken == []
