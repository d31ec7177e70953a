"""A small example corpus the project writes itself: synthetic, fictional résumés as TXT, PDF and DOCX.

No real person's data: every résumé is assembled from the role descriptions below. One file,
``scanned_cv.pdf``, is deliberately broken so the example shows how a corrupt file is skipped and
counted.

Example:
    >>> import tempfile
    >>> sorted(path.name for path in write_demo_corpus(tempfile.mkdtemp()))[:3]
    ['accountant.docx', 'backend_engineer.pdf', 'data_scientist.txt']
"""

from __future__ import annotations

import os
from pathlib import Path

# (file name, title, summary, skills, experience): fictional profiles, one per file.
PROFILES = [
    (
        "backend_engineer.pdf",
        "Senior Backend Engineer",
        "Builds and runs Python services on AWS.",
        "Python, Django, PostgreSQL, AWS, Kubernetes, Kafka",
        [
            "2019-2024 Backend engineer, payments platform: designed REST APIs serving 2k requests/s",
            "2016-2019 Software developer, logistics start-up: Django back office, PostgreSQL tuning",
        ],
    ),
    (
        "data_scientist.txt",
        "Data Scientist",
        "Forecasting and experimentation for retail.",
        "Python, pandas, scikit-learn, SQL, Spark, A/B testing",
        [
            "2020-2024 Data scientist, grocery chain: demand forecasts for 900 stores",
            "2018-2020 Analyst, market research firm: survey statistics, dashboards in Tableau",
        ],
    ),
    (
        "registered_nurse.docx",
        "Registered Nurse",
        "Ten years on surgical and intensive care wards.",
        "Patient assessment, medication administration, wound care, ICU monitoring, BLS/ACLS",
        [
            "2017-2024 Staff nurse, surgical ward of a 600-bed hospital: post-operative care",
            "2014-2017 Nurse, intensive care unit: ventilated patients, family liaison",
        ],
    ),
    (
        "frontend_developer.txt",
        "Frontend Developer",
        "Accessible web interfaces in React.",
        "TypeScript, React, Next.js, CSS, Figma, Jest, WCAG",
        [
            "2021-2024 Frontend developer, travel booking site: checkout redesign, +8% conversion",
            "2019-2021 Web developer, agency: marketing sites and design systems",
        ],
    ),
    (
        "accountant.docx",
        "Chartered Accountant",
        "Audit and statutory reporting for mid-size firms.",
        "IFRS, audit, Excel, SAP FI, tax returns, month-end close",
        [
            "2018-2024 Senior accountant, manufacturing group: consolidation of 12 entities",
            "2015-2018 Audit associate, accounting firm: audits of retail and logistics clients",
        ],
    ),
    (
        "devops_engineer.pdf",
        "DevOps Engineer",
        "Cloud infrastructure and CI/CD at scale.",
        "Terraform, AWS, Kubernetes, Docker, GitHub Actions, Prometheus, Linux",
        [
            "2020-2024 DevOps engineer, streaming service: Kubernetes clusters, on-call lead",
            "2017-2020 System administrator, university: Linux servers, backup automation",
        ],
    ),
    (
        "sales_manager.txt",
        "Sales Manager",
        "B2B software sales, team of eight account executives.",
        "Salesforce, negotiation, pipeline management, key accounts, forecasting",
        [
            "2019-2024 Sales manager, HR software vendor: grew annual revenue from 4M to 9M",
            "2015-2019 Account executive, telecom provider: SME accounts in the north region",
        ],
    ),
    (
        "ml_engineer.docx",
        "Machine Learning Engineer",
        "Search and ranking models in production.",
        "Python, PyTorch, transformers, vector search, Airflow, GCP",
        [
            "2021-2024 ML engineer, job marketplace: candidate ranking, embedding retrieval",
            "2018-2021 Software engineer, e-commerce: recommendation pipelines in Spark",
        ],
    ),
]
BROKEN_FILE = "scanned_cv.pdf"


def resume_text(title: str, summary: str, skills: str, experience: list[str]) -> str:
    """A plain résumé: title, summary, skills and experience sections."""
    return "\n".join([title, "", "Summary", summary, "", "Skills", skills, "", "Experience", *experience])


def write_demo_corpus(folder: str | os.PathLike) -> list[Path]:
    """Write the example résumés (and one broken PDF) into ``folder``; returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, *profile in PROFILES:
        path = folder / name
        text = resume_text(*profile)
        if path.suffix == ".pdf":
            write_text_pdf(path, text)
        elif path.suffix == ".docx":
            write_docx(path, text)
        else:
            path.write_text(text + "\n", encoding="utf-8")
        written.append(path)
    broken = folder / BROKEN_FILE
    broken.write_bytes(b"%PDF-1.4\n% a scan whose upload was cut off\n1 0 obj <<")
    return [*written, broken]


def write_docx(path: str | os.PathLike, text: str) -> None:
    """A DOCX with one paragraph per line of ``text`` (python-docx)."""
    import docx

    document = docx.Document()
    for line in text.splitlines():
        document.add_paragraph(line)
    document.save(str(path))


def write_text_pdf(path: str | os.PathLike, text: str) -> None:
    """A one-page PDF showing ``text`` line by line in Helvetica (Latin-1 text).

    Written by hand: pypdf reads PDFs but cannot lay out text, and a PDF writer package would be a
    dependency for these few lines.
    """
    lines = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in text.splitlines()]
    stream = "BT /F1 10 Tf 14 TL 50 800 Td " + " ".join(f"({line}) '" for line in lines) + " ET"
    content = stream.encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R "
        b"/Resources << /Font << /F1 4 0 R >> >> >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    Path(path).write_bytes(bytes(out))
