"""The document field schema shared by both modes: field names, types and the labels that announce them.

Names follow Azure AI Document Intelligence's prebuilt invoice model (``InvoiceId``, ``InvoiceDate``,
``VendorName``, ``CustomerName``, ``SubTotal``, ``TotalTax``, ``InvoiceTotal``, ``AmountDue``) plus our
insurance fields (``ClaimNumber``, ``PolicyNumber``, ``IncidentDate``, ``ClaimDate``, ``VehicleRegistration``,
``PolicyholderName``, ``ClaimantName``, ``InsurerName``). The prebuilt receipt model's names map onto these
(``RECEIPT_NAMES``), and the insurance fields are asked of Document Intelligence as query fields, so a record
reads the same whichever mode wrote it (docs/document-fields.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldType = Literal["string", "date", "currency", "identifier", "registration"]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    labels: tuple[str, ...]
    #: True for the insurance fields Document Intelligence is asked for as query fields.
    query: bool = False


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "ClaimNumber",
        "identifier",
        ("claim number", "claim no", "claim ref", "claim reference", "claim id", "claim #", "claim"),
        query=True,
    ),
    FieldSpec(
        "PolicyNumber",
        "identifier",
        ("policy number", "policy no", "policy ref", "policy reference", "policy #", "policy"),
        query=True,
    ),
    FieldSpec("InvoiceId", "identifier", ("invoice number", "invoice no", "invoice #", "invoice ref", "receipt no")),
    FieldSpec(
        "IncidentDate",
        "date",
        ("date of incident", "incident date", "date of loss", "loss date", "date of accident", "accident date"),
        query=True,
    ),
    FieldSpec(
        "ClaimDate",
        "date",
        ("claim date", "date of claim", "date reported", "reported on", "date submitted"),
        query=True,
    ),
    FieldSpec("InvoiceDate", "date", ("invoice date", "date of invoice", "transaction date", "date of issue", "date")),
    FieldSpec("SubTotal", "currency", ("subtotal", "sub total", "sub-total", "net amount", "net total")),
    FieldSpec("TotalTax", "currency", ("total tax", "tax", "vat", "sales tax", "gst")),
    FieldSpec("AmountDue", "currency", ("amount due", "balance due", "total due", "amount payable")),
    FieldSpec("InvoiceTotal", "currency", ("invoice total", "grand total", "total amount", "amount claimed", "total")),
    FieldSpec(
        "VehicleRegistration",
        "registration",
        (
            "vehicle registration",
            "registration number",
            "registration no",
            "vehicle reg",
            "reg no",
            "registration",
            "licence plate",
            "license plate",
            "number plate",
            "reg",
        ),
        query=True,
    ),
    FieldSpec(
        "PolicyholderName",
        "string",
        ("policyholder name", "policyholder", "policy holder", "name of insured", "insured name", "insured"),
        query=True,
    ),
    FieldSpec("ClaimantName", "string", ("claimant name", "claimant", "name of claimant"), query=True),
    FieldSpec("InsurerName", "string", ("insurer", "insurance company", "underwriter", "insured by"), query=True),
    FieldSpec("VendorName", "string", ("vendor", "supplier", "merchant", "repairer", "garage", "sold by")),
    FieldSpec("CustomerName", "string", ("customer name", "customer", "bill to", "billed to", "sold to")),
)
BY_NAME = {spec.name: spec for spec in FIELDS}
QUERY_FIELDS = tuple(spec.name for spec in FIELDS if spec.query)

#: Azure prebuilt-receipt field names -> ours (prebuilt-invoice already uses ours).
RECEIPT_NAMES = {
    "MerchantName": "VendorName",
    "TransactionDate": "InvoiceDate",
    "Subtotal": "SubTotal",
    "TotalTax": "TotalTax",
    "Total": "InvoiceTotal",
}
