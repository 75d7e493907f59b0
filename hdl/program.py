"""Putting a bitstream on a board with the programmer amaranth-boards names for it.

Each amaranth-boards platform has ``toolchain_program(products, name)``, which runs the board's
programmer on ``name.bin`` / ``name.bit`` (iceprog on the iCEBreaker, openFPGALoader on the
ULX3S and ECPIX-5, icesprog on the iCESugar boards, openocd on the Lattice evaluation boards,
...). :func:`programmer_command` records the command line it would run (``subprocess.check_call``
replaced during the call: nothing runs, no board is needed); :func:`program` checks that the
tool is installed, naming the Debian package that provides it where it is not
(:data:`PACKAGES`), and runs it. The bitstream is the build plan's ``top.bin`` / ``top.bit`` in
the build directory (:func:`hdl.build.build` leaves it there).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from unittest import mock

from gesture_snn.spec.errors import UserError
from hdl.build import TOP_NAME

__all__ = ["ProgramError", "PACKAGES", "programmer_command", "program"]

#: Programmer -> how to install it (Debian / Ubuntu package names).
PACKAGES = {
    "iceprog": "the Debian package fpga-icestorm (apt install fpga-icestorm)",
    "openFPGALoader": "the Debian package openfpgaloader (apt install openfpgaloader)",
    "openocd": "the Debian package openocd (apt install openocd)",
    "dfu-util": "the Debian package dfu-util (apt install dfu-util)",
    "ecpprog": "no Debian package: build it from https://github.com/gregdavill/ecpprog",
    "icesprog": "no Debian package: build it from https://github.com/wuxx/icesugar (tools/)",
}


class ProgramError(UserError):
    """The board could not be programmed: the tool is missing or failed (the message says what to do)."""


def _products(build_dir: Path):
    """Amaranth build products of ``build_dir`` that hand out its files in place (no temporary copies),
    so that the recorded command names the real bitstream."""
    from amaranth.build.run import BuildProducts

    class InPlace(BuildProducts):
        def _path(self, filename):
            path = build_dir / filename
            if not path.is_file():
                raise ProgramError(f"{path} does not exist: build the bitstream for this board first (gesture-snn build --board ...)")
            return path

        def get(self, filename, mode="b"):
            return self._path(filename).read_bytes() if mode == "b" else self._path(filename).read_text()

        @contextlib.contextmanager
        def extract(self, *filenames):
            paths = [str(self._path(name)) for name in filenames]
            yield None if not paths else paths[0] if len(paths) == 1 else paths

    return InPlace()


def programmer_command(board, build_dir: str | os.PathLike) -> list[str]:
    """The command ``board``'s platform runs to program the bitstream in ``build_dir`` (first command
    if it runs several), recorded without running anything."""
    calls: list[list[str]] = []

    def record(command, *args, **kwargs):
        calls.append([os.fspath(part) for part in command])
        return 0

    platform = board.platform()
    with mock.patch.object(subprocess, "check_call", record), mock.patch.object(subprocess, "run", record):
        platform.toolchain_program(_products(Path(build_dir)), TOP_NAME)
    if not calls:
        raise ProgramError(f"{board.name}: amaranth-boards' {board.platform_class} runs no programmer")
    return calls[0]


def program(board, build_dir: str | os.PathLike) -> list[str]:
    """Program ``board`` with the bitstream in ``build_dir`` through its platform's
    ``toolchain_program``; returns the command. ProgramError if the tool is missing (with the
    package that provides it) or fails."""
    command = programmer_command(board, build_dir)
    tool = command[0]
    if shutil.which(tool) is None:
        install = PACKAGES.get(Path(tool).name, "its package")
        raise ProgramError(f"{tool} (the programmer of {board.name} in amaranth-boards) is not installed; "
                           f"install {install}")
    try:
        board.platform().toolchain_program(_products(Path(build_dir)), TOP_NAME)
    except subprocess.CalledProcessError as exc:
        raise ProgramError(f"{' '.join(command)} failed with exit status {exc.returncode}: is the board "
                           f"connected (and the USB device accessible to this user)?") from None
    except FileNotFoundError as exc:
        install = PACKAGES.get(Path(str(exc.filename)).name, "its package")
        raise ProgramError(f"{exc.filename} is not installed; install {install}") from None
    return command
