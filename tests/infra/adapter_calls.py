"""The AWS API calls the adapters make, read from their source, as IAM action names.

The IAM tests compare each Lambda role with what its code really calls, so the calls are
derived here from `adapters/aws/**/*.py` instead of being written down a second time:

- every module that builds a client with `boto3.client("<service>", ...)` (the name a literal
  or a string constant of the module) is a module of that service, and so is every module of
  a package under `adapters/aws/` (`dynamodb/`) one of whose modules builds one; an attribute
  call in it whose name is one of the service's
  operations (botocore's model, in snake case: `client().send_message(...)`) is a call of
  that operation, and so is `get_paginator("<operation>")` (every page is one call of it);
- calls are followed from an adapter method through the module's helpers (`self._table.get`,
  `tx.put` on a `_Transaction`, plain functions), with types taken from `x = Class(...)`
  assignments and parameter annotations;
- `TransactWriteItems` is not an IAM action: DynamoDB authorises each item by its own action,
  so the `{"Put": ...}` / `{"Update": ...}` / `{"Delete": ...}` / `{"ConditionCheck": ...}`
  items a reached helper builds become `PutItem`, `UpdateItem`, `DeleteItem` and
  `ConditionCheckItem` (the same for `TransactGetItems` and `{"Get": ...}`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
AWS_ADAPTERS = ROOT / "adapters" / "aws"

# A transaction item's key -> the IAM action DynamoDB checks for it.
TRANSACTION_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
TRANSACTION_OPERATIONS = frozenset({"TransactWriteItems", "TransactGetItems"})


@cache
def service_operations(service: str) -> dict[str, str]:
    """Snake-case method name -> API operation name, from botocore's model of `service`."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


@cache
def iam_prefix(service: str) -> str:
    """The IAM action prefix of a boto3 service (`dynamodb`, `sqs`, `sns`)."""
    model = botocore.session.get_session().get_service_model(service)
    return str(model.signing_name or model.endpoint_prefix)


@dataclass
class _Function:
    """A function or method: what it calls and which transaction items it builds."""

    module: str
    qualname: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    owner: str | None  # the class, for methods
    edges: set[tuple[str, str]] = field(default_factory=set)  # (module, qualname)
    operations: set[str] = field(default_factory=set)  # API operation names
    transaction_items: set[str] = field(default_factory=set)  # "Put", "Update", ...


@dataclass
class _Module:
    name: str
    tree: ast.Module
    services: tuple[str, ...]
    classes: dict[str, ast.ClassDef]
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
    imports: dict[str, tuple[str, str]]  # local name -> (module, name)


def _module_strings(tree: ast.Module) -> dict[str, str]:
    """The module's top-level string constants: `NAME = "x"` or `NAME: Final = "x"`."""
    found: dict[str, str] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        value = getattr(node, "value", None)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = value.value
    return found


def _client_services(tree: ast.Module) -> tuple[str, ...]:
    """The services of every `boto3.client("<service>", ...)`, the name a literal or a constant
    of the module (`boto3.client(SMS_SERVICE, ...)`)."""
    constants = _module_strings(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "client"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "boto3"
            and node.args
        ):
            service = node.args[0]
            if isinstance(service, ast.Constant) and isinstance(service.value, str):
                found.append(service.value)
            elif isinstance(service, ast.Name) and service.id in constants:
                found.append(constants[service.id])
            else:
                # A service this reader cannot name would drop its calls from every role's
                # expected actions: fail loudly instead.
                raise ValueError(f"boto3.client of an unreadable service: {ast.unparse(service)}")
    return tuple(sorted(set(found)))


def _module_name(path: Path) -> str:
    """`adapters/aws/sqs.py` -> `adapters.aws.sqs`; a package's `__init__.py` -> the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _load_module(path: Path) -> _Module:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = _module_name(path)
    imports: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imports[alias.asname or alias.name] = (node.module, alias.name)
    return _Module(
        name=name,
        tree=tree,
        services=_client_services(tree),
        classes={n.name: n for n in tree.body if isinstance(n, ast.ClassDef)},
        functions={
            n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        },
        imports=imports,
    )


def _annotation_class(annotation: ast.expr | None) -> str | None:
    """`Cls`, `Cls | None`, `"Cls"` or `Cls[...]` -> `Cls`; anything else -> None."""
    if annotation is None:
        return None
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        for side in (annotation.left, annotation.right):
            found = _annotation_class(side)
            if found is not None and found != "None":
                return found
        return None
    if isinstance(annotation, ast.Subscript):
        return _annotation_class(annotation.value)
    if isinstance(annotation, ast.Name):
        return annotation.id
    return None


def _constructed_class(value: ast.expr | None) -> str | None:
    """`Cls(...)` -> `Cls`."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
        return value.func.id
    return None


class _Index:
    """Every function of the AWS adapter modules and the call edges between them."""

    def __init__(self, modules: Iterable[_Module]) -> None:
        self.modules = {m.name: m for m in modules}
        self.functions: dict[tuple[str, str], _Function] = {}
        for module in self.modules.values():
            for name, node in module.functions.items():
                self.functions[(module.name, name)] = _Function(module.name, name, node, None)
            for cls_name, cls in module.classes.items():
                for item in cls.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        key = (module.name, f"{cls_name}.{item.name}")
                        self.functions[key] = _Function(module.name, key[1], item, cls_name)
        for function in self.functions.values():
            self._scan(function)

    # --- name resolution --------------------------------------------------------------

    def resolve_class(self, module: str, name: str | None) -> tuple[str, str] | None:
        """Where class `name`, as seen from `module`, is defined (module, class)."""
        if name is None:
            return None
        here = self.modules.get(module)
        if here is None:
            return None
        if name in here.classes:
            return (module, name)
        origin = here.imports.get(name)
        if origin is not None and origin[0] in self.modules:
            return self.resolve_class(origin[0], origin[1])
        return None

    def resolve_function(self, module: str, name: str) -> tuple[str, str] | None:
        here = self.modules.get(module)
        if here is None:
            return None
        if name in here.functions:
            return (module, name)
        origin = here.imports.get(name)
        if origin is not None and origin[0] in self.modules:
            return self.resolve_function(origin[0], origin[1])
        return None

    def attribute_types(self, module: str, cls: str) -> dict[str, tuple[str, str]]:
        """`self.x = Cls(...)` (or `self.x: Cls = ...`) in any method -> {x: Cls}."""
        types: dict[str, tuple[str, str]] = {}
        node = self.modules[module].classes[cls]
        for item in ast.walk(node):
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            annotation: ast.expr | None = None
            if isinstance(item, ast.Assign):
                targets, value = item.targets, item.value
            elif isinstance(item, ast.AnnAssign):
                targets, value, annotation = [item.target], item.value, item.annotation
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    found = self.resolve_class(module, _constructed_class(value))
                    found = found or self.resolve_class(module, _annotation_class(annotation))
                    if found is not None:
                        types[target.attr] = found
        return types

    # --- scanning one function ----------------------------------------------------------

    def _scan(self, fn: _Function) -> None:
        module = self.modules[fn.module]
        operations: dict[str, str] = {}
        for service in module.services:
            operations.update(service_operations(service))
        self_types = self.attribute_types(fn.module, fn.owner) if fn.owner else {}
        local_types: dict[str, tuple[str, str]] = {}
        arguments = fn.node.args
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            found = self.resolve_class(fn.module, _annotation_class(arg.annotation))
            if found is not None:
                local_types[arg.arg] = found
        for node in ast.walk(fn.node):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                found = self.resolve_class(fn.module, _constructed_class(node.value))
                if isinstance(target, ast.Name) and found is not None:
                    local_types[target.id] = found
            if isinstance(node, ast.Dict):
                for key in node.keys:
                    if isinstance(key, ast.Constant) and key.value in TRANSACTION_ITEM_ACTIONS:
                        fn.transaction_items.add(str(key.value))
        for node in ast.walk(fn.node):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name):
                target_fn = self.resolve_function(fn.module, func.id)
                if target_fn is not None:
                    fn.edges.add(target_fn)
                target_cls = self.resolve_class(fn.module, func.id)
                if target_cls is not None:
                    fn.edges.add((target_cls[0], f"{target_cls[1]}.__init__"))
                continue
            if not isinstance(func, ast.Attribute):
                continue
            if func.attr in operations and isinstance(func.value, ast.Call | ast.Name):
                # `client().send_message(...)`, `self._client().publish(...)`, `c.query(...)`
                fn.operations.add(operations[func.attr])
            paginated = node.args[0] if func.attr == "get_paginator" and node.args else None
            if isinstance(paginated, ast.Constant) and paginated.value in operations:
                # `client().get_paginator("get_parameters_by_path")`: its pages are the calls.
                fn.operations.add(operations[paginated.value])
            receiver = func.value
            owner: tuple[str, str] | None = None
            if isinstance(receiver, ast.Name):
                if receiver.id in ("self", "cls") and fn.owner is not None:
                    owner = (fn.module, fn.owner)
                else:
                    owner = local_types.get(receiver.id) or self.resolve_class(
                        fn.module, receiver.id
                    )
            elif (
                isinstance(receiver, ast.Attribute)
                and isinstance(receiver.value, ast.Name)
                and receiver.value.id == "self"
            ):
                owner = self_types.get(receiver.attr)
            if owner is not None:
                fn.edges.add((owner[0], f"{owner[1]}.{func.attr}"))

    # --- reachability ---------------------------------------------------------------------

    def reachable(self, starts: Iterable[tuple[str, str]]) -> Iterator[_Function]:
        seen: set[tuple[str, str]] = set()
        todo = [s for s in starts if s in self.functions]
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            fn = self.functions[key]
            yield fn
            todo.extend(e for e in fn.edges if e in self.functions and e not in seen)

    def entry_points(self, target: str) -> list[tuple[str, str]]:
        """`Class` (every method) or `Class.method`, found in any adapter module."""
        cls, _, method = target.partition(".")
        found: list[tuple[str, str]] = []
        for module in self.modules.values():
            if cls not in module.classes:
                continue
            if method:
                found.append((module.name, f"{cls}.{method}"))
            else:
                found.extend(
                    (module.name, f"{cls}.{item.name}")
                    for item in module.classes[cls].body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                )
        return found

    def service_of(self, module: str, operation: str) -> str:
        for service in self.modules[module].services:
            if operation in service_operations(service).values():
                return service
        raise LookupError(f"{operation} is no operation of {module}'s services")


def _package_of(path: Path) -> Path | None:
    """The package directory right under adapters/aws holding `path`, or None."""
    parts = path.relative_to(AWS_ADAPTERS).parts
    return AWS_ADAPTERS / parts[0] if len(parts) > 1 else None


@cache
def _index() -> _Index:
    modules = {path: _load_module(path) for path in sorted(AWS_ADAPTERS.rglob("*.py"))}
    # A package (`dynamodb/`) is one service's adapter in several modules: only one of them
    # builds the client, all of them call it.
    package_services: dict[Path, set[str]] = {}
    for path, module in modules.items():
        package = _package_of(path)
        if package is not None:
            package_services.setdefault(package, set()).update(module.services)
    for path, module in modules.items():
        package = _package_of(path)
        if package is not None:
            module.services = tuple(sorted(package_services[package]))
    return _Index(modules.values())


class UnknownAdapter(LookupError):
    """An adapter class or method named in a test map does not exist in adapters/aws."""


def iam_actions(targets: Iterable[str]) -> set[str]:
    """The IAM actions (`dynamodb:PutItem`, `sqs:SendMessage`, ...) that `targets` can call.

    A target is an adapter class (`DynamoDBDoctorRepository`: all its methods) or one method
    (`DynamoDBAppointmentRepository.get`).
    """
    index = _index()
    starts: list[tuple[str, str]] = []
    for target in targets:
        found = [s for s in index.entry_points(target) if s in index.functions]
        if not found:
            raise UnknownAdapter(f"no adapter {target!r} in {AWS_ADAPTERS}")
        starts.extend(found)
    actions: set[str] = set()
    transaction_items: set[str] = set()
    transacts = False
    for fn in index.reachable(starts):
        transaction_items |= fn.transaction_items
        for operation in fn.operations:
            service = index.service_of(fn.module, operation)
            if operation in TRANSACTION_OPERATIONS:
                transacts = True
                continue
            actions.add(f"{iam_prefix(service)}:{operation}")
    if transacts:
        actions |= {f"dynamodb:{TRANSACTION_ITEM_ACTIONS[k]}" for k in transaction_items}
    return actions
