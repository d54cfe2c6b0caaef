#!/usr/bin/env python3
"""Validates a FHIR R4 Bundle written by vitalfarm (GET /v1/subjects/{sid}/fhir).

Two opinions that are not ours:
  * the schema: fhir.resources 6.4.0 (the last release for FHIR R4; 6.5 is
    R4B, 7 and later R5) parses the Bundle and then every entry's resource
    with its own class, checking required elements, cardinalities, value
    sets of `code` elements and the primitive types;
  * the terminology the schema cannot see: observations are coded in LOINC,
    categorised in the HL7 observation-category system, measured in UCUM,
    and every reference and fullUrl resolves inside the bundle.

Usage: validate_fhir.py BUNDLE.json ...; exits 1 naming every problem.
"""

import json
import re
import sys

try:
    import pydantic
    from fhir.resources import __version__ as fhir_resources_version
    from fhir.resources import get_fhir_model_class
    from fhir.resources.bundle import Bundle
except ImportError as e:  # pragma: no cover - a setup problem, said plainly
    sys.exit(f"validate_fhir: needs fhir.resources==6.4.0 and pydantic<2 ({e})")

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
URN_UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def code_problems(model, where):
    """Codes outside their required value set. fhir.resources 6.4.0 lists
    each required binding's codes (`enum_values`) on the field but does not
    enforce them, so a status of "done" would otherwise pass."""
    problems = []
    if isinstance(model, list):
        for i, item in enumerate(model):
            problems += code_problems(item, f"{where}[{i}]")
        return problems
    if not isinstance(model, pydantic.BaseModel):
        return problems
    for name, field in model.__fields__.items():
        value = getattr(model, name, None)
        if value is None:
            continue
        allowed = [c for c in field.field_info.extra.get("enum_values") or [] if c != "+"]
        if allowed and isinstance(value, str) and value not in allowed:
            problems.append(f"{where}.{field.alias}: {value!r} is not one of {allowed}")
        problems += code_problems(value, f"{where}.{field.alias}")
    return problems


def schema_problems(doc):
    """What fhir.resources refuses, per resource."""
    problems = []
    if doc.get("resourceType") != "Bundle":
        return [f"resourceType is {doc.get('resourceType')!r}, not 'Bundle'"]
    try:
        problems += code_problems(Bundle.parse_obj(doc), "Bundle")
    except pydantic.ValidationError as e:
        problems.append(f"Bundle: {e}")
    for i, entry in enumerate(doc.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or "resourceType" not in resource:
            problems.append(f"entry[{i}]: no resource with a resourceType")
            continue
        try:
            cls = get_fhir_model_class(resource["resourceType"])
        except KeyError:
            problems.append(f"entry[{i}]: unknown resourceType {resource['resourceType']!r}")
            continue
        try:
            cls.parse_obj(resource)
        except pydantic.ValidationError as e:
            problems.append(f"entry[{i}] {resource['resourceType']}: {e}")
    return problems


def quantity_problems(where, q):
    problems = []
    if not isinstance(q, dict):
        return [f"{where}: no valueQuantity"]
    if q.get("system") != UCUM:
        problems.append(f"{where}: quantity system {q.get('system')!r}, not UCUM")
    if not q.get("code"):
        problems.append(f"{where}: quantity without a UCUM code")
    if not isinstance(q.get("value"), (int, float)) or isinstance(q.get("value"), bool):
        problems.append(f"{where}: quantity without a numeric value")
    return problems


def loinc_problems(where, concept):
    codings = (concept or {}).get("coding") or []
    if not any(c.get("system") == LOINC and c.get("code") for c in codings):
        return [f"{where}: no LOINC coding"]
    return []


def terminology_problems(doc):
    """What the schema allows but a vitalfarm bundle must not do."""
    problems = []
    if doc.get("type") != "searchset":
        problems.append(f"Bundle.type is {doc.get('type')!r}, not 'searchset'")
    entries = doc.get("entry") or []
    full_urls = set()
    by_reference = {}
    for i, entry in enumerate(entries):
        resource = entry.get("resource") or {}
        rid = resource.get("id", "")
        if not FHIR_ID.match(rid):
            problems.append(f"entry[{i}]: id {rid!r} breaks the FHIR id rules")
        url = entry.get("fullUrl", "")
        if not URN_UUID.match(url) or url != f"urn:uuid:{rid}":
            problems.append(f"entry[{i}]: fullUrl {url!r} is not urn:uuid:<id>")
        if url in full_urls:
            problems.append(f"entry[{i}]: fullUrl {url!r} appears twice")
        full_urls.add(url)
        by_reference[f"{resource.get('resourceType')}/{rid}"] = resource
    observations = 0
    for i, entry in enumerate(entries):
        obs = entry.get("resource") or {}
        if obs.get("resourceType") != "Observation":
            continue
        observations += 1
        where = f"entry[{i}] Observation/{obs.get('id')}"
        categories = [c for cat in obs.get("category") or [] for c in cat.get("coding") or []]
        if not any(c.get("system") == CATEGORY for c in categories):
            problems.append(f"{where}: no category from {CATEGORY}")
        problems += loinc_problems(f"{where}.code", obs.get("code"))
        ref = (obs.get("subject") or {}).get("reference")
        if ref not in by_reference or not ref.startswith("Patient/"):
            problems.append(f"{where}: subject {ref!r} is not a Patient in the bundle")
        if "component" in obs:
            if "valueQuantity" in obs:
                problems.append(f"{where}: a panel with a top-level value")
            for j, comp in enumerate(obs["component"]):
                problems += loinc_problems(f"{where}.component[{j}].code", comp.get("code"))
                problems += quantity_problems(f"{where}.component[{j}]", comp.get("valueQuantity"))
        else:
            problems += quantity_problems(where, obs.get("valueQuantity"))
    total = doc.get("total")
    if not isinstance(total, int) or total < observations:
        problems.append(f"Bundle.total {total!r} is below the {observations} observations present")
    return problems


def main(paths):
    if not paths:
        sys.exit("usage: validate_fhir.py BUNDLE.json ...")
    failed = False
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{path}: cannot read a JSON bundle: {e}", file=sys.stderr)
            failed = True
            continue
        problems = schema_problems(doc)
        if not problems:
            problems = terminology_problems(doc)
        if problems:
            failed = True
            print(f"{path}: INVALID FHIR R4 bundle", file=sys.stderr)
            for p in problems:
                print(f"  - {p}", file=sys.stderr)
        else:
            n = len(doc.get("entry") or [])
            print(f"{path}: valid FHIR R4 Bundle ({n} entries; fhir.resources {fhir_resources_version})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
