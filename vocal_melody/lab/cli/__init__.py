"""The lab's commands: one module per command, over the product's parser and runner (``vocal_melody.cli.common``)."""
