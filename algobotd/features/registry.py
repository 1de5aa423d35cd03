"""The feature registry: one ``FeatureSpec`` per feature, in a fixed order.

Models, the store and the TUI read feature names (and the column order of ``X``) from
here. ``inputs`` says what a feature needs: ``bars``, ``quotes`` (bid/ask and depth at the
bar close, intrabar quote updates), ``trades`` (intrabar prints), ``news``, ``options``,
``insider`` (Form 4 filings) and ``ref:<role>`` (a configured reference series such as the volatility index). A
``proxy`` feature is estimated from bars because the real input (quotes or trades) is
often missing; its non-proxy sibling needs the real input and is NaN without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

FAMILIES = ("price_volume", "microstructure", "cross_asset", "alternative")


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    family: str
    window: int  # bars of the symbol's own history the feature needs (1 = the bar alone)
    inputs: tuple[str, ...]
    proxy: bool = False  # a bar-based stand-in for a quote/trade-based measure
    doc: str = ""

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["inputs"] = list(self.inputs)
        return d


class Registry:
    """Ordered, filterable collection of specs; ``index`` maps a name to its column in ``X``."""

    def __init__(self, specs: Iterable[FeatureSpec]) -> None:
        self.specs: tuple[FeatureSpec, ...] = tuple(specs)
        self.index: dict[str, int] = {s.name: i for i, s in enumerate(self.specs)}
        if len(self.index) != len(self.specs):
            raise ValueError("feature names must be unique")
        bad = sorted({s.family for s in self.specs} - set(FAMILIES))
        if bad:
            raise ValueError(f"unknown feature families: {bad}")

    def __len__(self) -> int:
        return len(self.specs)

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self.specs)

    def __contains__(self, name: object) -> bool:
        return name in self.index

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def family(self, family: str) -> tuple[FeatureSpec, ...]:
        return tuple(s for s in self.specs if s.family == family)

    def select(self, disabled_families: Iterable[str] = (), disabled: Iterable[str] = ()) -> Registry:
        """A registry without the switched-off families and features (unknown names raise)."""
        fams, names = set(disabled_families), set(disabled)
        unknown = sorted((fams - set(FAMILIES)) | (names - set(self.index)))
        if unknown:
            raise KeyError(f"unknown feature or family: {', '.join(unknown)}")
        return Registry(s for s in self.specs if s.family not in fams and s.name not in names)

    @property
    def longest_window(self) -> int:
        return max((s.window for s in self.specs), default=1)

    def to_json(self) -> list[dict[str, object]]:
        return [s.as_dict() for s in self.specs]
