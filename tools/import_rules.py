"""An import-linter contract type this project adds to the stock ones (see ``.importlinter``).

``private_modules``: a module whose name starts with an underscore belongs to the package that holds it and
may be imported only from inside that package. A private module directly under the root package
(``sidecar._cli_support``) may be imported only by the root's own modules. Other packages reach a package
through its ``__init__`` or its public modules, so what a package offers is what it exports.
"""

from __future__ import annotations

from typing import Any

from importlinter import Contract, ContractCheck, fields, output


def owner_of(module: str) -> str | None:
    """The package a private module belongs to, or None for a public module."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return ".".join(parts[:i])
    return None


def may_import(importer: str, owner: str, root: str) -> bool:
    if owner == root:  # a root-level private module: only the root's own modules
        return importer.count(".") == 1 or importer == root
    return importer == owner or importer.startswith(owner + ".")


class PrivateModulesContract(Contract):
    type_name = "private_modules"
    root = fields.StringField()

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        root = str(self.root)
        broken: list[dict[str, Any]] = []
        for imported in sorted(graph.modules):
            owner = owner_of(imported)
            if owner is None or not imported.startswith(root):
                continue
            for importer in sorted(graph.find_modules_that_directly_import(imported)):
                if may_import(importer, owner, root):
                    continue
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = sorted({d["line_number"] for d in details})
                broken.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["broken"]:
            where = ", ".join(f"l.{n}" for n in item["lines"])
            output.print_error(f"{item['importer']} imports the private module {item['imported']} ({where})",
                               bold=False)
            output.new_line()
