"""Exact mathematics: the activation catalogue with proved sup|φ'|, safe parsing, the chain, its
structured derivation, and the depth bounds (ceiling and floor) with verdicts that say only what is proved."""
