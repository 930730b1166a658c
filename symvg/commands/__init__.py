"""Click commands, one module per topic; :mod:`symvg.cli` registers them. They hold no maths."""
