"""Shared pieces behind the codecs users name: bit I/O, match finding, canonical codes,
the LZ decoder checks, the predictive (range-coded) base and the context-mixing engine."""
