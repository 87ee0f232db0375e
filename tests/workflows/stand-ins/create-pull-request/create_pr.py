"""Stand-in create-pull-request: commit the working-tree changes to BRANCH, push it to origin (a
bare repository in the tests), and keep a pull-request record file per branch.

Like the real action: no change means no branch and no pull request; the same branch again
updates the open pull request (same number) instead of opening a second one.
"""

import json
import os
import subprocess
from pathlib import Path


def git(*args: str, check: bool = True) -> str:
    return subprocess.run(["git", *args], check=check, capture_output=True, text=True).stdout.strip()


def main() -> None:
    env = os.environ
    branch, out = env["BRANCH"], Path(env["GITHUB_OUTPUT"])
    base = env.get("BASE") or env.get("GITHUB_REF_NAME") or git("rev-parse", "--abbrev-ref", "HEAD")
    paths = [p for p in env.get("ADD_PATHS", "").splitlines() if p.strip()] or ["-A"]
    git("add", *paths)
    if not git("status", "--porcelain", "--untracked-files=no"):
        print("stand-in create-pull-request: no changes, no pull request")
        out.open("a").write("operation=none\n")
        return
    name, _, email = env.get("COMMITTER", "bot <bot@example.invalid>").partition(" <")
    ident = ["-c", f"user.name={name}", "-c", f"user.email={email.rstrip('>')}"]
    git("checkout", "-B", branch)
    git(*ident, "commit", "-q", "-m", env.get("COMMIT_MESSAGE", "update"))
    head = git("rev-parse", "HEAD")
    # The action owns its branch: it force-pushes it, as the real one does.
    git("push", "--force", "origin", f"HEAD:refs/heads/{branch}")
    records = Path(env["STANDIN_STATE"]) / "prs"
    records.mkdir(parents=True, exist_ok=True)
    record_file = records / (branch.replace("/", "__") + ".json")
    body = Path(env["BODY_PATH"]).read_text() if env.get("BODY_PATH") else env.get("BODY", "")
    if record_file.exists():
        record = json.loads(record_file.read_text())
        operation = "updated"
    else:
        record = {"number": len(list(records.glob("*.json"))) + 1, "state": "open"}
        operation = "created"
    record.update(
        branch=branch, base=base, head=head, title=env.get("TITLE", ""), body=body,
        labels=[x.strip() for x in env.get("LABELS", "").replace(",", "\n").splitlines() if x.strip()],
    )
    record_file.write_text(json.dumps(record, indent=1))
    with out.open("a") as f:
        f.write(f"number={record['number']}\nurl=file://{record_file}\noperation={operation}\n")
        f.write(f"head={head}\nbranch={branch}\n")
    print(f"stand-in create-pull-request: {operation} #{record['number']} from {branch}")


main()
