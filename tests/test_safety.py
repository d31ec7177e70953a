"""Safety of the checkpoint's custom code: what it imports, what it loads, and that it stays offline."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

CODE_FILES = ["configuration_cre.py", "modeling_cre.py"]
ALLOWED = {"torch", "transformers", "__future__"} | set(sys.stdlib_module_names)


def imports_outside_try(path) -> tuple[set[str], set[str]]:
    """Top-level modules imported unconditionally, and those guarded by try/except ImportError."""
    tree = ast.parse(path.read_text())
    guarded_nodes = {
        id(node) for handler in ast.walk(tree) if isinstance(handler, ast.Try) for node in ast.walk(handler)
    }
    required, optional = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        (optional if id(node) in guarded_nodes else required).update(name.split(".")[0] for name in names)
    return required, optional


def test_code_files_import_only_torch_transformers_and_the_standard_library():
    for name in CODE_FILES:
        required, optional = imports_outside_try(REPO_ROOT / name)
        assert required <= ALLOWED, f"{name} imports {required - ALLOWED} unconditionally"
        assert optional <= ALLOWED | {"tqdm"}, f"{name} imports {optional}"


def test_checkpoint_holds_safetensors_and_only_its_two_code_files(tiny_cre, tmp_path):
    tiny_cre("encoder").save_pretrained(tmp_path)
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert sorted(path.name for path in files if path.suffix == ".py") == CODE_FILES
    assert not [path for path in files if path.suffix in {".bin", ".pt", ".pth", ".pkl", ".ckpt"}]
    assert (tmp_path / "model.safetensors").exists()


def test_loading_opens_no_connection_and_runs_no_other_code(tiny_cre, tmp_path):
    tiny_cre("decoder").save_pretrained(tmp_path)
    script = textwrap.dedent(
        f"""
        import socket, sys

        def refuse(*args, **kwargs):
            raise AssertionError(f"network access: {{args[:2]}}")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        vector = model.encode("senior python engineer", kind="jd")
        files = {{getattr(module, "__file__", None) or "" for name, module in sys.modules.items()
                 if name.startswith("transformers_modules")}}
        remote = sorted({{f.rsplit("/", 1)[-1] for f in files if f and not f.endswith("__init__.py")}})
        print(remote, vector.shape)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "['configuration_cre.py', 'modeling_cre.py'] (32,)"
