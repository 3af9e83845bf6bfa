"""The LSP tests' shared helpers live in `tests.lsp.clients`, a plain module that test modules
import; this conftest stays empty so pytest's own import of it (before configuration) does no
work and nothing is imported under two names."""
