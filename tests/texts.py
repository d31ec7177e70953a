"""Varied JD and CV texts written for the tests: many fields, short and long, plain and messy."""

JDS = [
    "Senior Data Engineer. You will own our lakehouse on AWS: Spark and Airflow pipelines, dbt models, data "
    "contracts with product teams. 6+ years building batch and streaming systems; Python and SQL required.",
    "Registered Nurse (ICU), night shifts. Current RN licence, BLS and ACLS certification, 2 years of "
    "critical-care experience. Monitor ventilated patients, titrate drips, educate families.",
    "Junior Accountant: accounts payable and receivable, monthly bank reconciliations, support the year-end "
    "audit. Bachelor's degree in accounting; Excel (VLOOKUP, pivot tables). Entry level welcome.",
    "Head of Product Design — lead a team of 8 designers, set the design system strategy, partner with the "
    "CPO on the roadmap. 10+ years in product design, 3+ managing managers. Figma.",
    "Warehouse associate. Pick, pack and ship orders; forklift certificate a plus; lift 50 lbs.",
    "Machine Learning Engineer, Search Ranking. Train and ship learning-to-rank models (LightGBM, "
    "transformers), run online A/B tests, own feature pipelines. PyTorch, Python, Kubernetes.",
    "Elementary school teacher (Grade 3). State teaching certificate, classroom management, differentiated "
    "instruction, parent conferences. Bilingual English/Spanish preferred.",
    "Site Reliability Engineer: on-call for a 99.99% SLO platform, Terraform, Prometheus, incident "
    "reviews, capacity planning. Linux internals and Go or Python.",
    "Paralegal - litigation support, e-discovery (Relativity), drafting motions, managing case files. "
    "Paralegal certificate required; 3 years at a law firm.",
    "Sales Development Representative: outbound prospecting, 60 calls a day, book demos for account "
    "executives, Salesforce hygiene. No experience needed; great communication.",
    "Principal Software Architect, payments. Define the architecture of card processing at 5k TPS, PCI DSS, "
    "mentor staff engineers, write RFCs. Java/Kotlin, event sourcing, 12+ years.",
    "Pharmacist — retail pharmacy, dispense prescriptions, counsel patients, immunisations. PharmD and "
    "state licence.",
    "Marketing Manager (B2B SaaS): own demand generation, paid search and LinkedIn budget of $1.2M, "
    "marketing automation in HubSpot, report pipeline to the CMO. 5+ years.",
    "Electrician apprentice: assist journeymen with residential wiring, conduit bending, panel upgrades. "
    "Enrolled in an apprenticeship programme; driver's licence.",
    "Data Analyst, Finance. SQL, Tableau dashboards for FP&A, variance analysis, forecasting support. "
    "2-4 years; degree in economics, finance or statistics.",
    "Chef de partie for a fine-dining restaurant: run the sauce station, manage mise en place, train "
    "commis chefs. Culinary diploma and 3 years in Michelin-level kitchens.",
    "HR Business Partner supporting 400 engineers in Berlin: performance cycles, org design, employee "
    "relations. German C1 and English required.",
    "Frontend developer (React, TypeScript) to build a design-system component library, accessibility "
    "(WCAG 2.1), Storybook, unit tests with Jest.",
    "Clinical Research Coordinator: recruit and consent trial participants, maintain GCP documentation, "
    "coordinate with the IRB. Bachelor's in life sciences.",
    "Truck driver, CDL class A, regional routes, clean driving record, 1 year of experience.",
    "Product Manager, Growth. Own activation and retention experiments, define metrics with data science, "
    "write PRDs, work with 2 squads. SQL a plus.",
    "Cybersecurity analyst (SOC tier 2): triage SIEM alerts in Splunk, threat hunting, incident response "
    "playbooks. Security+ or CySA+; 3 years.",
    "Civil engineer, structural: design reinforced-concrete buildings, Eurocodes, ETABS, supervise site "
    "inspections. Chartered status (or working toward it).",
    "Customer support specialist, bilingual French/English, Zendesk, SLA of 4 hours, escalate bugs.",
    "Veterinary technician: anaesthesia monitoring, dental cleanings, lab work. Licensed vet tech.",
]

CVS = [
    "Data engineer, 7 years. Built Spark/Airflow pipelines on AWS (EMR, Glue), migrated a 40 TB warehouse "
    "to Delta Lake, introduced dbt and data contracts. Python, SQL, Scala. BSc Computer Science.",
    "ICU nurse (RN), 4 years at a level-1 trauma centre; ventilator management, CRRT, ACLS and BLS "
    "certified; precepted new graduates.",
    "Accounting intern, summer 2023: bank reconciliations, AP invoice entry in SAP, Excel pivot tables. "
    "Studying for a BSc in Accounting, graduating 2024.",
    "Design Director, 12 years. Built and led a 10-person product design team, launched a company-wide "
    "design system, hired two design managers. Figma, Sketch, research ops.",
    "Warehouse team member: order picking and packing, RF scanners, forklift certified (2022).",
    "Machine learning engineer, 5 years: learning-to-rank for e-commerce search (+4% conversion in A/B), "
    "feature store on Kubernetes, PyTorch and LightGBM.",
    "Third-grade teacher, 6 years, bilingual (Spanish/English), state certified; reading intervention and "
    "classroom management awards.",
    "SRE at a fintech: on-call rotation, Terraform modules, Prometheus/Grafana, led 30 post-incident "
    "reviews, cut p99 latency by 35%. Go, Python, Linux.",
    "Litigation paralegal, 4 years, Relativity e-discovery, drafted motions and subpoenas, certified "
    "paralegal.",
    "Sales development rep, 18 months: 70 dials/day, 140% of meeting quota, Salesforce, Outreach.",
    "Staff engineer, payments: designed a card authorisation service (4k TPS), PCI DSS scope reduction, "
    "mentored 6 engineers. Java, Kotlin, Kafka, event sourcing. 13 years.",
    "Pharmacy technician (not a pharmacist): filled prescriptions, inventory, insurance claims; CPhT.",
    "Demand generation manager, 6 years B2B SaaS, $1.5M paid budget, HubSpot and Marketo, pipeline "
    "reporting to the CMO.",
    "Electrician apprentice, year 2: residential rewires, conduit bending, panel changes under "
    "supervision; OSHA 10.",
    "Financial data analyst: SQL, Tableau, FP&A variance reports, rolling forecasts; BA Economics; 3 years.",
    "Sous chef in a one-Michelin-star restaurant, previously chef de partie (sauce); culinary diploma.",
    "HR business partner, Berlin, 5 years supporting tech teams; German native, English fluent; performance "
    "and org design.",
    "Influencer and content creator with 200k followers; posts about coding, React and productivity; "
    "no professional engineering role.",
    "Frontend engineer, React/TypeScript, built a component library with Storybook, WCAG audits, Jest and "
    "Playwright tests. 4 years.",
    "Clinical research coordinator, oncology trials: consent, eCRF, GCP, IRB submissions. BSc Biology.",
    "CDL-A driver, regional, 3 years, clean MVR, hazmat endorsement.",
    "Growth product manager: ran 40 activation experiments, owned retention metrics, wrote PRDs, SQL.",
    "SOC analyst tier 2: Splunk, threat hunting, IR playbooks, Security+ and CySA+, 3 years.",
    "Structural engineer (chartered), RC and steel buildings, Eurocodes, ETABS, site supervision, 8 years.",
    "Customer support agent, French/English, Zendesk, 4-hour SLA, bug escalation to engineering. " * 12,
]

PARITY_TEXTS = JDS + CVS  # 50 texts, the last one longer than 256 tokens
