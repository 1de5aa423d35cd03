"""A growable symbol -> array index map shared by features, portfolio and broker."""

from __future__ import annotations


class SymbolIndex:
    def __init__(self, symbols: tuple[str, ...] | list[str] = ()) -> None:
        self._index: dict[str, int] = {}
        self._symbols: list[str] = []
        for s in symbols:
            self.add(s)

    def add(self, symbol: str) -> int:
        """Index of ``symbol``, appending it when new (arrays indexed by it must grow)."""
        i = self._index.get(symbol)
        if i is None:
            i = len(self._symbols)
            self._index[symbol] = i
            self._symbols.append(symbol)
        return i

    def __getitem__(self, symbol: str) -> int:
        return self._index[symbol]

    def get(self, symbol: str) -> int | None:
        return self._index.get(symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._index

    def __len__(self) -> int:
        return len(self._symbols)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._symbols)
