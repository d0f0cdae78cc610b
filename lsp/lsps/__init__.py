"""LSP protocols (bLIP-50/51/52) on stock LND: LSPS0 transport, LSPS1 orders, LSPS2 JIT channels."""
