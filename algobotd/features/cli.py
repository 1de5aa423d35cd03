"""``algobotd features [--json]``: print the registry as configured."""

from __future__ import annotations

import json

from algobotd.config import FeaturesConfig
from algobotd.features.engine import configured_registry


def print_features(cfg: FeaturesConfig, as_json: bool = False) -> int:
    registry = configured_registry(cfg)
    if as_json:
        print(json.dumps(registry.to_json()))
        return 0
    width = max(len(s.name) for s in registry.specs) if len(registry) else 4
    for family in dict.fromkeys(s.family for s in registry.specs):
        group = registry.family(family)
        print(f"{family} ({len(group)})")
        for s in group:
            tag = " [bar proxy]" if s.proxy else ""
            print(f"  {s.name:<{width}}  window {s.window:>3}  inputs {','.join(s.inputs)}{tag}")
    print(f"{len(registry)} features")
    return 0
