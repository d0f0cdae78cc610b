"""The bottom of the dependency graph, shared by the lab (``harness``) and the LSP (``lsp``):
every pinned external version (``versions``) and LND's gRPC stubs, generated at setup from
the pinned LND (``stubs``). It imports neither ``lsp`` nor ``harness``."""
