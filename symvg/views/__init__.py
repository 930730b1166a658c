"""How results are shown: text, Unicode, LaTeX, Markdown and JSON from one step walk; tables; plots."""
