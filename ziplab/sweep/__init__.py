"""Model-size sweeps: fit bpb against size (fit), draw the curve (plot), write the record (report).

Submodules are imported on use so `import ziplab.sweep` stays free of scipy and matplotlib."""
