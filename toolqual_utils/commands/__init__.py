"""Sub-commands of the ``toolqual`` CLI, one module each (see ``toolqual_utils.cli``)."""
