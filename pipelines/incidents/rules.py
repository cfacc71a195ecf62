"""Typing and row rules for incident extracts.

One pass types the allow-listed text (codes mapped by the contract's value map, dates
parsed, the reference replaced by a pseudonymous key) and one pandera validation names every
rule a row breaks (the measure returns' rule machinery, :mod:`pipelines.ingest.rules`). A
quarantined row's stored record holds codes and dates only: a value that is not code-like
(free text, something that looks like an NHS number, a postcode, an e-mail address) is
withheld, and the reasons never quote it.
"""

from __future__ import annotations

import hashlib
from datetime import date

import pandera.polars as pa
import polars as pl

from pipelines.incidents.contract import (
    CATEGORIES,
    CODE_LISTS,
    EVENT_TYPES,
    FIELDS,
    IncidentContract,
    code_list,
)
from pipelines.ingest.rules import Rule, rule_checks, split_by_rules

CODE_FIELDS = (
    "event_type",
    "category",
    "subcategory",
    "service_area",
    "location",
    "specialty",
    "agents",
    "physical_harm",
    "psychological_harm",
    "age_band",
    "taxonomy_version",
    "org_code",
    "reporter_org_code",
)
# What a value of personal data looks like, wherever it turns up (docs/incidents.md).
NHS_NUMBER = r"^\d{3}[ -]?\d{3}[ -]?\d{4}$"
EMAIL = r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}"
POSTCODE = r"(?i)^[A-Z]{1,2}[0-9][A-Z0-9]?\s*[0-9][A-Z]{2}$"
DATE_LIKE = r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"
# A code: short, no spaces beyond a two-word label ("good care"), nothing but these.
CODE_LIKE = r"^[A-Za-z0-9_./-]+( [A-Za-z0-9_./-]+)?$"
AGENTS_LIKE = r"^[0-9]+([ ,;|]+[0-9]+)*$"
REFERENCE_LIKE = r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,39}$"
ORG_LIKE = r"^[A-Z0-9]{3,6}$"
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%Y/%m/%d")


def _text(field: str) -> pl.Expr:
    """The raw cell trimmed, a spreadsheet's float rendering of an integer ("5.0") undone."""
    return (
        pl.col(f"raw_{field}")
        .str.strip_chars()
        .replace("", None)
        .str.replace(r"^(\d+)\.0+$", "${1}")
    )


def looks_personal(expr: pl.Expr) -> pl.Expr:
    """True for a value shaped like an NHS number, an e-mail address or a postcode."""
    return (
        expr.str.contains(NHS_NUMBER) | expr.str.contains(EMAIL) | expr.str.contains(POSTCODE)
    ).fill_null(False)


def event_day(field: str) -> pl.Expr:
    """A date field's ``raw_<field>`` text as a date (YYYY-MM-DD or DD/MM/YYYY), else null."""
    text = _text(field).str.slice(0, 10)
    return pl.coalesce(
        [text.str.strptime(pl.Date, fmt, strict=False) for fmt in DATE_FORMATS]
    ).alias(field)


def event_key(layout: str, org: str | None, reference: str | None) -> str | None:
    """Pseudonymous event key: the reference is never stored, only this hash of layout,
    organisation and reference (a later extract of the same event finds the same key)."""
    if not reference:
        return None
    text = f"{layout}|{org or ''}|{reference}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def type_extract(frame: pl.DataFrame, contract: IncidentContract) -> pl.DataFrame:
    """Typed columns beside the raw text: mapped codes, dates, integers, agents, event key.
    ``frame`` holds the rows of one extract or many of ``contract``, each row with its
    file's ``submitter_code`` (a layout naming no organisation gives the submitter's)."""
    maps = contract.values
    out = frame.with_columns(
        *[_text(f).alias(f"txt_{f}") for f in contract.keep],
    )
    for field in FIELDS:  # every field the warehouse has, kept by this contract or not
        if f"txt_{field}" not in out.columns:
            out = out.with_columns(pl.lit(None, pl.String).alias(f"txt_{field}"))

    def mapped(field: str) -> pl.Expr:
        text = pl.col(f"txt_{field}")
        if field in maps:
            return text.str.to_uppercase().replace_strict(maps[field], default=None)
        return text

    org = (
        pl.col("submitter_code")
        if contract.organisation_from_submitter
        else pl.col("txt_org_code").str.to_uppercase()
    )
    out = out.with_columns(
        org.alias("org_code"),
        pl.col("txt_reporter_org_code").str.to_uppercase().alias("reporter_org_code"),
        pl.col("txt_event_ref").alias("event_ref"),
        (
            pl.col("txt_revision").cast(pl.Int64, strict=False)
            if contract.revisions
            else pl.lit(0, pl.Int64)
        ).alias("revision"),
        pl.col("txt_taxonomy_version").alias("taxonomy_version"),
        event_day("submitted_on").alias("submitted_on"),
        event_day("event_date").alias("event_date"),
        mapped("event_type").str.to_lowercase().alias("event_type")
        if "event_type" not in maps
        else mapped("event_type").alias("event_type"),
        mapped("category").alias("category"),
        pl.col("txt_subcategory").str.to_uppercase().alias("subcategory"),
        mapped("service_area").alias("service_area"),
        mapped("location").alias("location"),
        mapped("specialty").alias("specialty"),
        pl.col("txt_agents")
        .str.split(" ")
        .list.eval(pl.element().filter(pl.element() != ""))
        .alias("agents"),
        pl.col("txt_patient_no").cast(pl.Int64, strict=False).alias("patient_no"),
        mapped("physical_harm").cast(pl.Int16, strict=False).alias("physical_harm"),
        mapped("psychological_harm").cast(pl.Int16, strict=False).alias("psychological_harm"),
        mapped("age_band").cast(pl.Int16, strict=False).alias("age_band"),
    )
    out = out.with_columns(
        pl.col("agents").list.eval(pl.element().str.replace_all(r"[,;|]", "")).alias("agents")
    )
    # An LFPSE record names its agents, not a category: medicines and devices follow from
    # them; a local export names its category, and the agent follows from that.
    out = out.with_columns(
        pl.when(pl.col("category").is_not_null())
        .then(pl.col("category"))
        .when(pl.col("agents").list.contains("4"))
        .then(pl.lit("medication"))
        .when(pl.col("agents").list.contains("3"))
        .then(pl.lit("device"))
        .otherwise(None)
        .alias("category"),
        pl.when(pl.col("agents").is_not_null())
        .then(pl.col("agents"))
        .when(pl.col("category") == "medication")
        .then(pl.lit(["4"]))
        .when(pl.col("category") == "device")
        .then(pl.lit(["3"]))
        .otherwise(None)
        .alias("agents"),
    )
    keys = [
        event_key(contract.layout, o, r)
        for o, r in zip(out["org_code"].to_list(), out["event_ref"].to_list(), strict=True)
    ]
    return out.with_columns(pl.Series("event_key", keys, dtype=pl.String))


def quotable_values(contract: IncidentContract, field: str) -> set[str]:
    """Values of ``field`` a reason or a stored record may quote: codes the contract or the
    LFPSE lists know. Anything else (a surname looks just like a local code) is withheld."""
    known = set(contract.values.get(field, {}))
    if field in CODE_LISTS:
        known |= set(code_list(CODE_LISTS[field]))
    if field == "event_type":
        known |= set(EVENT_TYPES) | {t.upper() for t in EVENT_TYPES}
    if field == "category":
        known |= set(CATEGORIES)
    return known


def _org_quotable(text: pl.Expr) -> pl.Expr:
    """An ODS-shaped code: three characters, or up to six with a digit (a five-letter
    word could be a surname)."""
    return text.str.contains(r"^[A-Z0-9]{3}$") | (
        text.str.contains(ORG_LIKE) & text.str.contains(r"[0-9]")
    )


def shown(field: str, quotable: set[str]) -> pl.Expr:
    """A value for a reason: quoted if it is a known code, a small number or an ODS-shaped
    code; otherwise only its length."""
    text = pl.col(f"txt_{field}")
    ok = text.str.contains(r"^[0-9]{1,6}$") | text.str.to_uppercase().is_in(
        sorted({q.upper() for q in quotable})
    )
    if field in ("org_code", "reporter_org_code"):
        ok = ok | _org_quotable(text)
    return (
        pl.when(ok.fill_null(False))
        .then(pl.format("'{}'", text))
        .otherwise(pl.format("(withheld, {} characters)", text.str.len_chars()))
    )


def _personal_or_text(field: str) -> pl.Expr:
    text = pl.col(f"txt_{field}")
    return looks_personal(text) | text.str.contains(DATE_LIKE).fill_null(False)


def _bad_shape(field: str, pattern: str) -> pl.Expr:
    """Present, not personal-looking, but not shaped like a code: free text."""
    text = pl.col(f"txt_{field}")
    return text.is_not_null() & ~_personal_or_text(field) & ~text.str.contains(pattern)


def _withheld(field: str) -> pl.Expr:
    return pl.format(
        "column {} ({}) holds a value that is not a code ({} characters; withheld)",
        pl.lit(field),
        pl.lit("kept field"),
        pl.col(f"txt_{field}").str.len_chars(),
    )


def incident_rules(contract: IncidentContract, *, known_orgs: set[str], today: date) -> list[Rule]:
    """Every row rule, in the order reasons are listed. What a rule needs to know of the
    file a row came from is a column of the row (``submitter_code``, ``submitter_is_icb``),
    not part of the rule, so one set of rules judges the rows of many extracts at once."""
    rules: list[Rule] = [
        Rule(
            "missing_reference",
            pl.col("txt_event_ref").is_not_null(),
            pl.lit("the event reference is blank: a record without one cannot be kept current"),
        ),
        Rule(
            "reference_not_an_identifier",
            pl.col("txt_event_ref").is_null()
            | (
                pl.col("txt_event_ref").str.contains(REFERENCE_LIKE)
                & ~pl.col("txt_event_ref").str.contains(EMAIL)
                & ~pl.col("txt_event_ref").str.contains(POSTCODE)
            ),
            pl.format(
                "the event reference is not an identifier ({} characters; withheld)",
                pl.col("txt_event_ref").str.len_chars(),
            ),
        ),
    ]
    if contract.revisions:
        rules += [
            Rule(
                "revision_not_a_number",
                pl.col("revision").is_not_null() & (pl.col("revision").fill_null(-1) >= 0),
                pl.lit("Revision must be a whole number 0 or more"),
            ),
            Rule(
                "revision_backwards",
                pl.col("stored_revision").is_null()
                | (pl.col("revision").fill_null(0) >= pl.col("stored_revision")),
                pl.format(
                    "revision {} is older than revision {} already stored for this event",
                    pl.col("revision"),
                    pl.col("stored_revision"),
                ),
            ),
        ]
    if contract.taxonomy_versions:
        rules.append(
            Rule(
                "unsupported_taxonomy_version",
                pl.col("taxonomy_version").is_in(list(contract.taxonomy_versions)).fill_null(False),
                pl.format(
                    "taxonomy version must be one of {}",
                    pl.lit(", ".join(contract.taxonomy_versions)),
                ),
            )
        )
    for field in ("event_date", "submitted_on"):
        rules.append(
            Rule(
                f"{field}_unreadable",
                pl.col(field).is_not_null(),
                pl.lit(f"{field} is blank or not a date (YYYY-MM-DD or DD/MM/YYYY)"),
            )
        )
    rules += [
        Rule(
            "event_after_report",
            (pl.col("event_date") <= pl.col("submitted_on")).fill_null(True),
            pl.format(
                "event date {} is after the date it was reported, {}",
                pl.col("event_date"),
                pl.col("submitted_on"),
            ),
        ),
        Rule(
            "event_in_future",
            (pl.col("event_date") <= pl.lit(today)).fill_null(True),
            pl.format("event date {} is in the future", pl.col("event_date")),
        ),
        Rule(
            "report_in_future",
            (pl.col("submitted_on") <= pl.lit(today)).fill_null(True),
            pl.format("reported date {} is in the future", pl.col("submitted_on")),
        ),
        Rule(
            "unknown_organisation",
            pl.col("org_code").is_in(sorted(known_orgs)).fill_null(False)
            | _personal_or_text("org_code")
            | _bad_shape("org_code", ORG_LIKE),
            pl.format(
                "organisation {} is not in the organisation register",
                shown("org_code", set()),
            ),
        ),
    ]
    if not contract.organisation_from_submitter:
        rules.append(
            Rule(
                "organisation_not_submitter",
                pl.col("submitter_is_icb")
                | (pl.col("org_code") == pl.col("submitter_code")).fill_null(True),
                pl.format(
                    "the event occurred in {}, but {} is not an ICB: it sends its own events",
                    shown("org_code", set()),
                    pl.col("submitter_code"),
                ),
            )
        )
    # Values that must never be stored: personal-looking, or free text, in a code column.
    for field in CODE_FIELDS:
        if field not in contract.keep and field != "org_code":
            continue
        if field == "org_code" and contract.organisation_from_submitter:
            continue
        rules.append(
            Rule(
                f"personal_data_in_{field}",
                ~_personal_or_text(field),
                pl.format(
                    "column {} holds something shaped like personal data (an NHS number, "
                    "a date, a postcode or an e-mail address; {} characters, withheld)",
                    pl.lit(field),
                    pl.col(f"txt_{field}").str.len_chars(),
                ),
            )
        )
        pattern = AGENTS_LIKE if field == "agents" else CODE_LIKE
        rules.append(Rule(f"free_text_in_{field}", ~_bad_shape(field, pattern), _withheld(field)))

    # Codes: mapped by the contract, then checked against the lists.
    def code_ok(field: str, allowed: list[str]) -> pl.Expr:
        clean = ~_personal_or_text(field) & ~_bad_shape(
            field, AGENTS_LIKE if field == "agents" else CODE_LIKE
        )
        present = pl.col(f"txt_{field}").is_not_null()
        if field == "agents":
            valid = pl.col("agents").list.eval(pl.element().is_in(allowed)).list.all()
        else:
            valid = pl.col(field).cast(pl.String).is_in(allowed)
        return ~present | ~clean | valid.fill_null(False)

    checks: list[tuple[str, list[str], str]] = [
        ("event_type", list(EVENT_TYPES), "an event type"),
        ("category", list(CATEGORIES), "a category"),
    ]
    for field, list_name in CODE_LISTS.items():
        checks.append((field, list(code_list(list_name)), f"a code of the LFPSE list {list_name}"))
    for field, allowed, what in checks:
        if field not in contract.keep:
            continue
        if field in contract.values:
            name, message = (
                f"unmapped_{field}",
                pl.format(
                    "{} {} has no entry in the {} contract's value map (add it; never guessed)",
                    pl.lit(field),
                    shown(field, quotable_values(contract, field)),
                    pl.lit(contract.name),
                ),
            )
        elif field == "physical_harm":
            name, message = (
                "harm_outside_list",
                pl.format(
                    "physical harm {} is not one of 1 (fatal) ... 5 (no harm)",
                    shown("physical_harm", set()),
                ),
            )
        elif field == "psychological_harm":
            name, message = (
                "psychological_harm_outside_list",
                pl.format(
                    "psychological harm {} is not one of 1 (severe) ... 4 (no harm)",
                    shown("psychological_harm", set()),
                ),
            )
        elif field == "age_band":
            name, message = (
                "age_not_a_band",
                pl.lit(
                    "age must be one of the 12 LFPSE age brackets (1-12); an exact age is "
                    "never stored (value withheld)"
                ),
            )
        else:
            name, message = (
                f"unknown_{field}",
                pl.format("{} '{}' is not {}", pl.lit(field), pl.col(f"txt_{field}"), pl.lit(what)),
            )
        rules.append(Rule(name, code_ok(field, allowed), message))
    if "patient_no" in contract.keep:
        rules.append(
            Rule(
                "patient_number_not_a_number",
                pl.col("txt_patient_no").is_null() | pl.col("patient_no").is_not_null(),
                pl.lit("EntityId (patient number within the event) must be a whole number"),
            )
        )
    rules.append(
        Rule(
            "duplicate_row",
            pl.col("first_of_key"),
            pl.format(
                "the same event, revision and patient appear again at line {}", pl.col("first_line")
            ),
        )
    )
    return rules


SCHEMA_COLUMNS = {
    "event_key": pa.Column(pl.String, nullable=True),
    "revision": pa.Column(pl.Int64, nullable=True),
    "event_date": pa.Column(pl.Date, nullable=True),
    "submitted_on": pa.Column(pl.Date, nullable=True),
    "org_code": pa.Column(pl.String, nullable=True),
}


# What a row's file is within a batch of extracts judged together: every rule about other
# rows of "the same file" (a repeated row, an event kept whole) is partitioned by it.
FILE = "file_index"


def split_incidents(typed: pl.DataFrame, rules: list[Rule]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(good rows, quarantined rows with ``rules`` and ``reasons``) of the rows of one or
    many extracts (``file_index``, ``source_file``). A row of an event revision whose
    other row (another patient) in the same extract was quarantined goes too: an event is
    kept whole or not at all, so its worst harm is never understated. Reasons name the
    file, the line and each rule."""
    keyed = typed.with_columns(
        (pl.int_range(pl.len()).over(FILE, "event_key", "revision", "patient_no") == 0)
        .or_(pl.col("event_key").is_null())
        .alias("first_of_key"),
        pl.col("source_line")
        .first()
        .over(FILE, "event_key", "revision", "patient_no")
        .alias("first_line"),
    )
    schema = pa.DataFrameSchema(SCHEMA_COLUMNS, checks=rule_checks(rules), strict=False)
    good, bad = split_by_rules(keyed, schema, rules)
    if bad.height and good.height:
        # An exact repeat of a row is dropped alone: the event is whole without it.
        broken = (
            bad.filter(
                pl.col("event_key").is_not_null() & (pl.col("rules") != pl.lit(["duplicate_row"]))
            )
            .group_by(FILE, "event_key", "revision")
            .agg(pl.col("source_line").min().alias("bad_line"))
        )
        dragged = good.join(broken, on=[FILE, "event_key", "revision"], how="inner")
        if dragged.height:
            good = good.join(broken, on=[FILE, "event_key", "revision"], how="anti")
            dragged = dragged.with_columns(
                pl.lit(["event_incomplete"]).alias("rules"),
                pl.format(
                    "event_incomplete: another row of this event revision (line {}) was "
                    "quarantined; the event waits for a corrected extract",
                    pl.col("bad_line"),
                ).alias("reasons"),
            ).drop("bad_line")
            bad = pl.concat([bad, dragged.select(bad.columns)], how="vertical_relaxed")
    bad = bad.with_columns(
        pl.format("{} line {}: {}", "source_file", "source_line", "reasons").alias("reasons")
    ).sort(FILE, "source_line")
    return good, bad


def stored_as_of_file(typed: pl.DataFrame, rules: list[Rule], stored: pl.DataFrame) -> pl.DataFrame:
    """``typed`` with ``stored_revision``: the latest revision of its event stored before
    its extract, when the rows of many extracts (``file_index``, in the order they are
    applied) are judged together, exactly as if each extract had been stored before the
    next was judged. ``stored``: ``event_key``, ``stored_revision`` as stored before all
    of them (:class:`pipelines.incidents.store.StoredRevisions`).

    An extract stores the rows that break no rule and whose event revision is whole in it
    (:func:`split_incidents`); so a row counts for the extracts after its own when it
    keeps every rule but ``revision_backwards`` and no other row of its event revision in
    its extract breaks one. A row refused only as going backwards may count as well: its
    revision is below the one it was checked against, so it never raises the latest. A
    row refused for any other reason must not count: nothing of it is stored.
    """
    typed = typed.join(stored, on="event_key", how="left", maintain_order="left")
    others = [r for r in rules if r.name != "revision_backwards"]
    if len(others) == len(rules) or typed[FILE].n_unique() < 2:
        return typed
    # A pandera check passes a row whose check is null (split_by_rules): fill_null(True).
    keeps = pl.all_horizontal(
        [r.ok.fill_null(True) for r in others if r.name != "duplicate_row"]
    ).alias("keeps")
    repeat = [r.ok.fill_null(True) for r in others if r.name == "duplicate_row"]
    keyed = typed.with_columns(
        keeps,
        first_of_key=(
            pl.int_range(pl.len()).over(FILE, "event_key", "revision", "patient_no") == 0
        ).or_(pl.col("event_key").is_null()),
    ).with_columns(
        counts=pl.all_horizontal("keeps", *repeat)
        & ~(pl.col("event_key").is_not_null() & ~pl.col("keeps"))
        .any()
        .over(FILE, "event_key", "revision")
    )
    earlier = (
        keyed.filter(pl.col("event_key").is_not_null())
        .group_by("event_key", FILE)
        .agg(pl.col("revision").filter(pl.col("counts")).max().alias("latest"))
        .sort("event_key", FILE)
        .select(
            "event_key",
            FILE,
            # The latest of the extracts before this one (revisions that count are >= 0).
            pl.col("latest")
            .fill_null(-1)
            .cum_max()
            .shift(1)
            .over("event_key")
            .replace(-1, None)
            .alias("earlier"),
        )
    )
    return (
        typed.join(earlier, on=["event_key", FILE], how="left", maintain_order="left")
        .with_columns(pl.max_horizontal("stored_revision", "earlier").alias("stored_revision"))
        .drop("earlier")
    )


def safe_record(bad: pl.DataFrame, contract: IncidentContract) -> pl.Series:
    """The stored record of quarantined rows: the event key instead of the reference, and
    each kept cell only if it is a date, a known code, a small number or an ODS-shaped code;
    anything else is withheld (its length only)."""
    fields = [f for f in contract.keep if f != "event_ref"]
    exprs = [pl.col("event_key")]
    for field in fields:
        text = pl.col(f"txt_{field}")
        if field in ("event_date", "submitted_on"):
            value = pl.when(text.str.contains(r"^[0-9: /.T-]{1,19}$")).then(text)
        else:
            value = pl.when(
                ~shown(field, quotable_values(contract, field)).str.starts_with("(")
            ).then(text)
        exprs.append(
            value.otherwise(
                pl.when(text.is_not_null()).then(
                    pl.format("<withheld: {} characters>", text.str.len_chars())
                )
            ).alias(field)
        )
    return bad.select(pl.struct(exprs).struct.json_encode().alias("raw_record"))["raw_record"]
