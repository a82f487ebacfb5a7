"""`ziplab export`: a lab checkpoint as a Hugging Face model directory."""

from __future__ import annotations

import click


@click.command()
@click.argument("model")
@click.argument("out", type=click.Path(file_okay=False))
def export(model, out):
    """Write MODEL (a ladder size, checkpoint path or 'shipped'; transformers only) to the new
    directory OUT as a Hugging Face Starcoder2 model with a 257-symbol byte vocabulary (256 =
    BOS). `ziplab score --model hf:OUT` and `ziplab -m nn --model hf:OUT` then use it."""
    from ..lm.export import export_checkpoint

    path = export_checkpoint(None if model == "shipped" else model, out)
    click.echo(f"wrote {path}/config.json and {path}/model.safetensors", err=True)
