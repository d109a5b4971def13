"""``python -m postfocus`` runs the command line."""

from postfocus.cli import main

__all__: list[str] = []  # a program, not a module to import from

if __name__ == "__main__":
    main(prog_name="postfocus")  # the same name, and completion variable, as the installed script
