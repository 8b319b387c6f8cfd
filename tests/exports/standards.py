"""The standards' own schemas and shapes as validators (tests/fixtures/standards/).

``import standards`` from a test (tests/exports is put on sys.path by its conftest).
Each loads its file once per process.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pyshacl
import rdflib
import yaml
from referencing import Registry, Resource

STANDARDS = Path(__file__).parents[1] / "fixtures" / "standards"
SE_CLASSES = ("dcat:Catalog", "dcat:Dataset", "dcat:foaf:Agent", "dcat:contactPoint")
RDF_TYPE = rdflib.RDF.type


@cache
def _shapes() -> rdflib.Graph:
    return rdflib.Graph().parse(STANDARDS / "dcat-ap" / "dcat-ap-SHACL.ttl")


def shacl(data: bytes, fmt: str) -> tuple[bool, str]:
    """(conforms, report) of DCAT-AP 3.0.0's SHACL shapes over ``data`` (turtle/json-ld)."""
    graph = rdflib.Graph().parse(data=data, format=fmt)
    conforms, _, text = pyshacl.validate(graph, shacl_graph=_shapes())
    return bool(conforms), str(text)


@cache
def _se_rules() -> dict[str, tuple[str, list[str]]]:
    """DCAT-AP-SE's mandatory properties (RDForms cardinality min >= 1) per class:
    class template id -> (class IRI, [property IRIs])."""
    bundle = json.loads((STANDARDS / "dcat-ap-se" / "bundle.json").read_text("utf-8"))
    by_id = {t["id"]: t for t in bundle["templates"] if t.get("id")}
    prefixes = {
        "dcterms": str(rdflib.DCTERMS),
        "dcat": str(rdflib.namespace.DCAT),
        "foaf": str(rdflib.FOAF),
        "vcard": "http://www.w3.org/2006/vcard/ns#",
        "rdf": str(rdflib.RDF),
    }

    def iri(name: str) -> str:
        if name.startswith("http"):
            return name
        prefix, _, local = name.partition(":")
        return prefixes[prefix] + local

    rules: dict[str, tuple[str, list[str]]] = {}
    for cls in SE_CLASSES:
        group = by_id[cls]
        constraint = group["constraints"][str(RDF_TYPE)]
        klass = iri(constraint if isinstance(constraint, str) else constraint[0])
        props = []
        for item in group["items"]:
            t = by_id.get(item, {}) if isinstance(item, str) else item
            if "extends" in t:
                t = {**by_id.get(t["extends"], {}), **t}
            # "deps": only when another value is given (the HVD category, only for
            # high-value datasets under Regulation 2023/138, which these are not).
            if t.get("deps"):
                continue
            if t.get("cardinality", {}).get("min", 0) >= 1 and t.get("property"):
                props.append(iri(t["property"]))
        rules[cls] = (klass, props)
    return rules


def dcat_ap_se_missing(data: bytes, fmt: str) -> list[str]:
    """DCAT-AP-SE's mandatory properties missing in ``data``: "class subject property"."""
    g = rdflib.Graph().parse(data=data, format=fmt)
    missing = []
    for cls, (klass, props) in _se_rules().items():
        # A contact point is typed vcard:Kind/Organization/Individual (any of them).
        types = (
            [rdflib.URIRef("http://www.w3.org/2006/vcard/ns#Kind")]
            if cls == "dcat:contactPoint"
            else [rdflib.URIRef(klass)]
        )
        for t in types:
            for subject in set(g.subjects(RDF_TYPE, t)):
                for p in props:
                    if g.value(subject, rdflib.URIRef(p)) is None:
                        missing.append(f"{cls} {subject} {p}")
    return missing


@cache
def _registry() -> Registry:
    resources = []
    for path in STANDARDS.glob("*/*.schema.json"):
        schema = json.loads(path.read_text("utf-8"))
        resources.append((schema.get("$id", path.name), Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def _validator(folder: str, name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((STANDARDS / folder / name).read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=_registry(), format_checker=cls.FORMAT_CHECKER)


def errors(folder: str, name: str, instance: Any) -> list[str]:
    """Every error of ``instance`` against the schema ``folder/name`` ([] when valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator(folder, name).iter_errors(instance)
    ]


def publiccode_errors(data: bytes) -> list[str]:
    return errors("publiccode", "publiccode.schema.json", yaml.safe_load(data))
