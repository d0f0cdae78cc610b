"""Submarine swaps (chain <-> Lightning) on the LSP's LND node. See docs/SWAPS.md."""
