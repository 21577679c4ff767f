#!/usr/bin/env python3
"""Regenerates fuzz/corpus/<target>/ from the API reference's examples and
the recorded conformance cases (spec/fixtures/) plus a few hand-written
inputs.  The generated files are committed, so every clone fuzzes from the
same seeds; run this only to refresh them:

    python3 fuzz/seeds.py [FIXTURES_DIR]     (default: spec/fixtures)

The input layouts are described at the top of each fuzz/fuzz_<target>.c."""
import glob
import hashlib
import json
import os
import re
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "spec", "fixtures")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
MAX_FILES, MAX_BYTES = 48, 64 * 1024

OPS = ["jobs:list", "jobs:create", "jobs:get", "jobs:update", "jobs:delete", "jobs:pause", "jobs:resume",
       "jobs:trigger", "jobs.runs:list", "jobs.runs:get", "jobs.runs:terminate"]
EXPECT = {"jobs:create": 201, "jobs:delete": 204}


def schema_order():
    """The itd_schemas[] order of src/model.c (the schema target's selector)."""
    src = open(os.path.join(ROOT, "src", "model.c")).read()
    body = re.search(r"itd_schemas\[\]\s*=\s*\{(.*?)\};", src, re.S).group(1)
    return re.findall(r"&itd_(\w+)", body)


SCHEMAS = schema_order()
out = {}


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) >= MAX_BYTES:
        return
    out.setdefault(target, {})[hashlib.sha1(data).hexdigest()[:16]] = data


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def sel(name, user=False):
    if name not in SCHEMAS:
        return None
    return bytes([(0x30 + SCHEMAS.index(name)) | (0x80 if user else 0)])


def schema_seed(name, doc, user=False):
    s = sel(name, user)
    if s is not None:
        add("schema", s + compact(doc).encode())


# parts of documents, by key: (schema of an input document's part, of a response's)
PARTS = {"sink": ("JobSink", "JobSink"), "schedule": ("JobSchedule", "JobSchedule"),
         "configuration": ("JobConfiguration", "JobConfigurationResponse"),
         "authSession": ("AuthSession", "AuthSession"), "state": (None, "JobState"),
         "summary": (None, "RunSummary"), "apiInfo": (None, "WebhookAPIInfo"), "result": (None, "ApiResult"),
         "project": (None, "ProjectRef"), "projectJob": (None, "IdRef")}
ITEMS = {"payload": ("JobPayload", "JobPayload"), "intervals": ("Interval", "Interval"),
         "calendars": ("Calendar", "Calendar")}


def walk_parts(doc, is_input):
    if isinstance(doc, list):
        for x in doc:
            walk_parts(x, is_input)
        return
    if not isinstance(doc, dict):
        return
    for k, v in doc.items():
        if k in PARTS and isinstance(v, (dict, str)):
            name = PARTS[k][0 if is_input else 1]
            if name:
                schema_seed(name, v)
        if k in ITEMS and isinstance(v, list):
            for x in v[:2]:
                schema_seed(ITEMS[k][0 if is_input else 1], x)
        if k == "retry" and isinstance(v, dict):
            schema_seed("JobRetry" if is_input else "JobRetryResponse", v)
        if k == "hour" and isinstance(v, dict):
            schema_seed("CalendarRange", v)
        walk_parts(v, is_input)


EXAMPLE_SCHEMA = {"job-webhook-paused": "Job", "job-s3-active": "Job", "jobs-list": "JobList",
                  "jobinput-minimal": "JobInput", "jobinput-rich": "JobInput", "jobinput-s3": "JobInput",
                  "runs-list": "JobRunList", "error-400": "ApiErrorInvalidInput", "error-401": "ApiErrorUnauthorized",
                  "error-404": "ApiError", "sink-result-completed": "JobSinkResultPayload",
                  "sink-result-failed": "JobSinkResultPayload", "trigger-response": "TriggerJob",
                  "create-response": "CreateJob", "pause-response": "PauseJob",
                  "terminate-response": "TerminateJobRun"}
EXAMPLE_OP = {"Job": ("jobs:get", 200), "JobList": ("jobs:list", 200), "JobRunList": ("jobs.runs:list", 200),
              "TriggerJob": ("jobs:trigger", 200), "CreateJob": ("jobs:create", 201),
              "PauseJob": ("jobs:pause", 200), "TerminateJobRun": ("jobs.runs:terminate", 200),
              "ApiErrorInvalidInput": ("jobs:create", 400), "ApiErrorUnauthorized": ("jobs:get", 401),
              "ApiError": ("jobs:get", 404)}


def response_seed(op, status, ctype, retry_after, body, flags=0):
    hdr = bytes([OPS.index(op), status >> 8, status & 0xff, flags, 128, 0, 0, 0, 0, 0, 0])
    add("response", hdr + (ctype or "").encode() + b"\n" + (retry_after or "").encode() + b"\n" + body.encode())


def request_seed(op, ws, key, project, job="", run="", page=("", "", ""), body="", absent=0x1c | 0x01 | 0x02,
                 ua=""):
    fields = ["", ws, key, ua, project, job, run, page[0], page[1], page[2]]
    data = bytes([OPS.index(op), absent]) + b"\0".join(f.encode() for f in fields) + b"\0" + body.encode()
    add("request", data)


examples = {os.path.basename(f)[:-5]: json.load(open(f)) for f in sorted(glob.glob(os.path.join(FIXTURES, "examples", "*.json")))}
cases = {os.path.basename(f)[:-5]: json.load(open(f)) for f in sorted(glob.glob(os.path.join(FIXTURES, "conformance", "*.json")))}
if not examples:
    sys.exit("seeds.py: no examples under %s/examples" % FIXTURES)

# ---- json: the documents as they are
for name, doc in examples.items():
    add("json", open(os.path.join(FIXTURES, "examples", name + ".json"), "rb").read())
for s in ['{"a":"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/"}', "[-0,0.5e-3,1E+2,123456789012345678,-1e308]",
          "[" * 50 + "]" * 50, '{"":null,"k":[true,false,{}]}', '"\xc3\xa9\xe2\x82\xac"', " \t\r\n1 "]:
    add("json", s)

# ---- schema: whole documents and their parts
for name, doc in examples.items():
    sch = EXAMPLE_SCHEMA.get(name)
    if sch:
        schema_seed(sch, doc)
        walk_parts(doc, sch == "JobInput")
schema_seed("JobInput", examples["jobinput-rich"], user=True)
schema_seed("Job", examples["job-s3-active"], user=True)
for name, case in cases.items():
    if isinstance(case["call"].get("input"), dict):
        schema_seed("JobInput", case["call"]["input"])
        walk_parts(case["call"]["input"], True)
    if isinstance(case["response"].get("body"), dict):
        walk_parts(case["response"]["body"], False)
rich = examples["jobinput-rich"]
upd = {k: v for k, v in rich.items() if k != "id"}
schema_seed("JobUpdateInput", upd)
schema_seed("JobState", "PAUSED")
schema_seed("JobRunDetail", {"jobRun": examples["runs-list"][0], "results": {"signed_url": "https://s3/x",
            "signed_url_expiration": "2025-06-01T00:00:00Z", "key": "k", "format": "json", "size": 12}})
schema_seed("JobRunList", {"jobRuns": examples["runs-list"], "totalCount": 2})
schema_seed("JobUpdateConfiguration", {"runMode": "Order-Irrelevant", "maxConcurrentRequests": 2,
            "retry": {"maximumAttempts": 3, "initialInterval": "1s"}, "requestTimeout": 600})
schema_seed("PayloadRetry", {"maximumAttempts": 3})
schema_seed("JobUpdatePayload", {"parameters": {"a": 1}, "requestTimeout": 10, "retry": {"maximumAttempts": 2},
            "apiName": "x"})
schema_seed("JobUpdateAuthSession", {"id": "a", "checkAttempts": 3, "createAttempts": 3})
schema_seed("JobUpdateRetry", {"maximumAttempts": 3, "initialInterval": "1s", "maximumInterval": "10m",
            "backoffCoefficient": 2})
schema_seed("UpdateJob", {"id": "j", "message": "Updated"})
schema_seed("ResumeJob", {"id": "j", "message": "Resumed"})
schema_seed("ResultCompleted", {"status": "completed", "result": {"x": 1}, "statusCode": 200})
schema_seed("ResultFailed", {"status": "failed", "error": "e", "message": "m", "statusCode": 500})
schema_seed("WebhookSink", {"type": "webhook", "url": "http://127.0.0.1/h", "headers": {"Authorization": "t"}})
schema_seed("AmazonS3Sink", {"type": "s3", "region": "r", "bucket": "b", "accessKeyId": "a",
            "secretAccessKey": "s", "prefix": "p/"})
schema_seed("Calendar", {"second": [{"start": 0, "end": 30, "step": 10}], "dayOfWeek": "MON-FRI",
            "month": ["JANUARY", 3], "comment": "c"})

# ---- response: recorded answers, examples, error statuses with Retry-After forms
for name, case in cases.items():
    r = case["response"]
    body = "" if r.get("body") is None else compact(r["body"])
    response_seed(case["call"]["op"], r["status"], r.get("content_type"), "", body)
for name, sch in EXAMPLE_SCHEMA.items():
    if sch in EXAMPLE_OP and name in examples:
        op, st = EXAMPLE_OP[sch]
        response_seed(op, st, "application/json; charset=utf-8", "", compact(examples[name]))
err = compact(examples["error-404"])
for st, ra in [(429, "1"), (503, "1.5"), (503, "Sun, 06 Nov 1994 08:49:37 GMT"), (502, ""),
               (503, "Sunday, 06-Nov-94 08:49:37 GMT"), (429, "Sun Nov  6 08:49:37 1994"), (500, "3"),
               (504, "120"), (302, ""), (418, "")]:
    response_seed("jobs:create" if st == 503 else "jobs:get", st, "application/json", ra, err, flags=0x80)
response_seed("jobs:trigger", 503, "text/html", "", "<html>busy</html>", flags=0x80 | 0x10 | 0x08 | 0x02)
response_seed("jobs:get", 200, "text/plain", "", "not json")

# ---- datetime: durations, date-times, HTTP dates
text = json.dumps(list(examples.values()))
for s in sorted(set(re.findall(r'"(\d{4}-\d\d-\d\dT[^"]+)"', text)))[:12]:
    add("datetime", s)
for s in ["500ms", "1s", "10m", "2 hours", "1.5h", ".5d", "3 weeks", "1y", "100", "2 Minutes", "7 DAYS", "1 ", "-1s",
          "2025-06-01T12:00:00.000Z", "2025-06-01T12:00:00+0530", "1999-12-31T23:59:60-00:00", "0001-01-01T00:00:00Z",
          "9999-12-31T23:59:59.999999Z", "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
          "Sun Nov  6 08:49:37 1994", "120"]:
    add("datetime", s)
for v in [0.0, 1748779200.5, -1.0, 253402300799.9996, float("nan"), 1e300]:
    add("datetime", struct.pack("<d", v) + b"2025-06-01T12:00:00Z")

# ---- request: the recorded calls
for name, case in cases.items():
    c = case["call"]
    body = compact(c["input"]) if isinstance(c.get("input"), dict) else ""
    request_seed(c["op"], c["workspace_id"], c["api_key"], c["project"], c.get("job_id", ""), c.get("run_id", ""),
                 body=body)
request_seed("jobs:create", "ws", "key", "p", body=compact(examples["jobinput-rich"]))
request_seed("jobs:update", "ws", "key", "p", "j", body=compact(upd))
request_seed("jobs.runs:list", "ws", "key", "p", "j", page=("2", "50", "start_time:desc"), absent=0x01 | 0x02)
request_seed("jobs.runs:terminate", "ws", "key", "p q", "j/1", "r?2")
request_seed("jobs:trigger", "ws", "k\r\nX: y", "p", "j", ua="ua")
request_seed("jobs:get", "ws", "key", "..", "j")

# ---- emulator: request sequences (see fuzz_emulator.c)
def emu(*reqs):
    add("emulator", "\n@@@\n".join(reqs))


job = compact(examples["jobinput-minimal"])
jid = examples["jobinput-minimal"]["id"]
emu("POST\n~/p/jobs\n" + job, "GET\n~/p/jobs/" + jid, "POST\n~/p/jobs/%s/trigger\n" % jid, "GET\n~/p/jobs/%s/runs" % jid)
emu("POST\n~/p/jobs\n" + compact(examples["jobinput-rich"]), "POST\n~/p/jobs/%s/pause\n" % examples["jobinput-rich"]["id"],
    "POST\n~/p/jobs/%s/resume\n" % examples["jobinput-rich"]["id"], "DELETE\n~/p/jobs/" + examples["jobinput-rich"]["id"])
emu("POST chunked\n~/p/jobs\n" + compact(examples["jobinput-s3"]), "GET\n~/p/jobs")
emu("PUT\n~/p/jobs/" + jid + "\n" + compact({k: v for k, v in examples["jobinput-minimal"].items() if k != "id"}))
emu("GET\n~/p/jobs/%s/runs?pageNumber=1&pageSize=2&sortBy=start_time" % jid, "GET\n~/p/jobs/%s/runs/run-1" % jid,
    "POST\n~/p/jobs/%s/runs/run-1/terminate\n" % jid)
emu("GET noauth\n~/p/jobs", "GET badauth\n/api/v1/workspace/other/projects/p/jobs", "PATCH\n~/p/jobs")
emu('POST\n/_emulator/faults\n{"status":503,"count":1,"retry_after":"1","match":"/jobs"}', "GET\n~/p/jobs",
    "GET\n/_emulator/faults", "DELETE\n/_emulator/faults")
emu('POST\n/_emulator/faults\n[{"kind":"malformed","count":1},{"kind":"truncated","count":1}]', "GET\n~/p/jobs", "GET\n~/p/jobs")
emu("GET\n/_emulator/stats", "GET\n/_emulator/health", 'POST\n/_emulator/receivers/r1\n{"status":500,"count":2}',
    'POST\n/_receiver/r1\n{"x":1}', "GET\n/_receiver/r1", "DELETE\n/_receiver/r1")
emu("GET\n/_emulator/runs/run-1/results", "GET\n/nowhere", "GET\n~/p%zz/jobs")
emu("GET raw\nGET /api/v1/workspace/ws-local/projects/p/jobs HTTP/1.1\r\nHost: x\r\nx-api-key: test-key\r\nConnection: close\r\n\r\n")
emu("POST raw\nPOST /api/v1/workspace/ws-local/projects/p/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n{")
emu("POST\n~/p/jobs\n{\"id\":\"bad id\",\"payload\":[]}", "POST\n~/p/jobs\n[1,2", "POST\n~/p/jobs\n")

# schema: one document per schema first, so the cap drops repeats
groups = {}
for h, data in out["schema"].items():
    groups.setdefault(data[0], []).append((h, data))
rr = []
while any(groups.values()):
    for k in list(groups):
        if groups[k]:
            rr.append(groups[k].pop(0))
out["schema"] = dict(rr)

for target, files in out.items():
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for h, data in list(files.items())[:MAX_FILES]:  # the first added matter most
        with open(os.path.join(d, "seed-" + h), "wb") as f:
            f.write(data)
    print("%-9s %d seeds (of %d)" % (target, min(len(files), MAX_FILES), len(files)))

# ---- dictionaries: the model's wire names and enum values (schema, response, request, emulator)
names = sorted(set(re.findall(r'"([A-Za-z_][A-Za-z0-9_:.-]*)"', open(os.path.join(ROOT, "src", "model.c")).read())))
with open(os.path.join(ROOT, "fuzz", "schema.dict"), "w") as f:
    f.write("# generated by fuzz/seeds.py from src/model.c: wire names and enum values\n")
    for n in names:
        f.write('"\\"%s\\""\n' % n)
    for tok in ["{", "}", "[", "]", ":", ",", "null", "true", "false", "\\\"\\\"", "0", "-1", "1e3", "\\\"1s\\\"", "\\\"***\\\""]:
        f.write('"%s"\n' % tok)
print("schema.dict %d names" % len(names))
