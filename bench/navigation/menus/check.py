#!/usr/bin/env python3
"""Validate the phone-menu corpus in this directory and print its counts.

Usage:  python3 check.py [DIR]        (DIR defaults to the directory of this file)

Only PyYAML is needed.  Exit status 0 when every file is valid and the corpus
meets its size targets, 1 otherwise.  The key extraction below exists only to
check that each path step names a key the prompt really offers; it is a
proof-reader for the corpus, not a model of how a navigator should listen.
"""
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

MIN_MENUS_TOTAL = 160
MIN_INDUSTRIES = 16
MIN_MENUS_PER_INDUSTRY = 10
MIN_REQUESTS_PER_MENU = 3
MAX_LEVELS = 3

SHAPES = {
    "single-level": "one level of 3-9 options, no submenu",
    "multi-level": "a key opens a submenu (2-3 levels)",
    "if-calling-about": "'if you are calling about X, press N'",
    "key-first": "'press 2 for billing'",
    "option-first": "'for billing, press 2'",
    "dash-style": "'billing - press 2'",
    "say-or-press": "'say billing or press 2'",
    "speech": "open speech prompt: 'tell me in a few words why you are calling'",
    "account-first": "the menu asks for an account number or other data before the options",
    "spanish-first": "a Spanish option is offered up front",
    "listen-carefully": "'please listen carefully, as our menu options have changed'",
    "hidden-operator": "the way to a person is hidden or oddly worded",
    "person-departments": "departments named like people (a pharmacist, a claims specialist)",
    "similar-options": "options sharing words but meaning different things",
    "star-pound": "star / pound keys (repeat, previous or main menu, other)",
    "extension": "'if you know your party's extension, dial it now'",
}

# Data-entry placeholders and words one of which the prompt at that level must contain.
DATA_STEPS = {
    "<account_number>": ("account number", "account", "loan number", "número de cuenta"),
    "<zip_code>": ("zip", "postal code", "código postal"),
    "<date_of_birth>": ("date of birth", "birth date", "birthdate", "fecha de nacimiento"),
    "<phone_number>": ("phone number", "telephone number", "mobile number", "wireless number",
                       "number you're calling", "número de teléfono"),
    "<member_id>": ("member id", "member number", "member identification", "subscriber id",
                    "id number", "id card", "student id"),
    "<last_four_ssn>": ("social security",),
    "<card_number>": ("card number",),
    "<policy_number>": ("policy number", "número de póliza"),
    "<tracking_number>": ("tracking number",),
    "<confirmation_number>": ("confirmation number", "confirmation code", "record locator"),
    "<order_number>": ("order number",),
    "<prescription_number>": ("prescription number", "rx number"),
}
WAIT_WORDS = ("stay on the line", "remain on the line", "hold", "do nothing", "wait",
              "permanezca en la línea", "no longer need")
SAY_WORDS = ("say", "tell me", "in a few words", "briefly", "diga")

WORD_KEYS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "cero": "0", "uno": "1", "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5",
    "seis": "6", "siete": "7", "ocho": "8", "nueve": "9",
    "star": "*", "asterisk": "*", "asterisco": "*",
    "pound": "#", "hash": "#", "numeral": "#", "gato": "#",
}
VERBS = (r"press|pressing|dial|dialing|push|touch|select|choose|enter|hit|oprima|oprime|marque|marca|"
         r"presione|presiona|pulse")
FILLER = r"(?:(?:the|el|la|tecla|key|number|número|numero|option|opción|opcion)\s+)*"
TOKEN = r"(\d+|\*|#|" + "|".join(WORD_KEYS) + r")(?![\w-])"
KEY_RE = re.compile(r"\b(?:" + VERBS + r")\s+" + FILLER + TOKEN, re.I)


def offered_keys(prompt):
    keys = set()
    for m in KEY_RE.finditer(prompt):
        tok = m.group(1).lower()
        keys.add(WORD_KEYS.get(tok, tok))
    return keys


def is_data(step):
    return step.startswith("<") and step.endswith(">") and step != "<wait>"


class Checker:
    def __init__(self):
        self.errors = []
        self.warnings = []

    def err(self, where, msg):
        self.errors.append(f"{where}: {msg}")

    def check_node(self, node, where, depth):
        if not isinstance(node, dict) or not isinstance(node.get("prompt"), str) \
                or not node["prompt"].strip():
            self.err(where, "a menu level needs a non-empty 'prompt'")
            return
        extra = set(node) - {"prompt", "submenus", "id", "company", "shapes", "requests"}
        if extra:
            self.err(where, f"unknown fields {sorted(extra)}")
        if depth > MAX_LEVELS:
            self.err(where, f"more than {MAX_LEVELS} levels")
        subs = node.get("submenus") or {}
        if not isinstance(subs, dict):
            self.err(where, "'submenus' must be a mapping key -> menu")
            return
        keys = offered_keys(node["prompt"])
        for k, sub in subs.items():
            if not isinstance(k, str):
                self.err(where, f"submenu key {k!r} must be a quoted string")
                continue
            if k not in keys:
                self.err(where, f"submenu key {k!r} is not offered by the prompt (offers {sorted(keys)})")
            self.check_node(sub, f"{where} > {k}", depth + 1)

    def walk(self, root, path, where):
        node = root
        ended = None  # why the call left the menu tree
        for i, step in enumerate(path):
            if not isinstance(step, str) or not step:
                self.err(where, f"step {step!r} must be a non-empty string")
                return
            if ended:
                self.err(where, f"step {step!r} comes after the path already ended ({ended})")
                return
            prompt = node["prompt"].lower()
            subs = node.get("submenus") or {}
            if step == "<wait>":
                if not any(w in prompt for w in WAIT_WORDS):
                    self.err(where, "'<wait>' but this level never says to stay on the line / hold")
                ended = "waited"
            elif step.startswith("say:"):
                if not step[4:].strip():
                    self.err(where, "empty say: step")
                if not any(w in prompt for w in SAY_WORDS):
                    self.err(where, f"{step!r} but this level does not invite speech")
                ended = "spoke"
            elif is_data(step):
                if step not in DATA_STEPS:
                    self.err(where, f"unknown data step {step!r}")
                elif not any(w in prompt for w in DATA_STEPS[step]):
                    self.err(where, f"{step!r} but this level does not ask for it")
            else:
                keys = offered_keys(node["prompt"])
                if step in keys:
                    pass
                elif re.fullmatch(r"\d{2,}", step) and ("extension" in prompt or "extensión" in prompt):
                    pass  # a caller-known extension, dialled where extensions are invited
                else:
                    self.err(where, f"key {step!r} is not offered at this level (offers {sorted(keys)})")
                    return
                if step in subs:
                    node = subs[step]
                else:
                    ended = f"key {step}"
        if not ended:
            # Ending on data entry is fine only where that level offers no choice of
            # department (at most a star/pound key, e.g. 'press star to add another').
            if node.get("submenus") or offered_keys(node["prompt"]) - {"*", "#"}:
                self.err(where, "path stops at a menu that still expects a choice")

    def check_shapes(self, menu, where):
        shapes = menu.get("shapes")
        if not isinstance(shapes, list) or not shapes:
            self.err(where, "'shapes' must be a non-empty list")
            return []
        for s in shapes:
            if s not in SHAPES:
                self.err(where, f"unknown shape {s!r}")
        prompts = []

        def collect(n):
            prompts.append(n["prompt"])
            for sub in (n.get("submenus") or {}).values():
                if isinstance(sub, dict) and "prompt" in sub:
                    collect(sub)
        collect(menu)
        text = " ".join(prompts).lower()
        has_subs = bool(menu.get("submenus"))
        if has_subs != ("multi-level" in shapes):
            self.err(where, "tag 'multi-level' exactly when the menu has submenus")
        if has_subs == ("single-level" in shapes):
            self.err(where, "tag 'single-level' exactly when the menu has no submenus")
        if "single-level" in shapes:
            n = len([k for k in offered_keys(menu["prompt"])])
            if not 3 <= n <= 10:
                self.err(where, f"single-level menu offers {n} keys (want 3-9 options)")
        tests = {
            "spanish-first": "español" in text,
            "listen-carefully": bool(re.search(r"listen (?:carefully|closely)|options have (?:recently )?changed", text)),
            "if-calling-about": bool(re.search(r"if you(?:'re| are) calling", text)),
            "say-or-press": bool(re.search(r"\bsay\b[^.]*\bor press\b|\bpress\b[^.]*\bor say\b", text)),
            "speech": any(w in text for w in ("in a few words", "tell me", "briefly", "in your own words", "say the name")),
            "extension": "extension" in text,
            "star-pound": any(k in offered_keys(p) for p in prompts for k in ("*", "#")),
            "key-first": bool(re.search(r"\b(?:press|dial|oprima|marque)\s+\w+\s+(?:for|to)\b", text)),
            "option-first": bool(re.search(r"\b(?:for|to|if)\b[^.]{1,120},\s*(?:please\s+)?(?:press|dial|oprima|marque)\b", text)),
            "dash-style": bool(re.search(r"\s[—–-]\s*(?:press|dial)\b", text)),
        }
        for tag, ok in tests.items():
            if tag in shapes and not ok:
                self.err(where, f"tagged {tag!r} but no prompt shows it")
        if "account-first" in shapes:
            steps = [s for r in menu.get("requests") or [] for p in r.get("paths") or [] for s in p or []]
            if not any(isinstance(s, str) and is_data(s) for s in steps):
                self.err(where, "tagged 'account-first' but no path has a data step")
        return shapes

    def check_file(self, path, seen_ids):
        where = path.name
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            self.err(where, f"YAML error: {e}")
            return None
        if not isinstance(doc, dict) or set(doc) != {"industry", "menus"}:
            self.err(where, "top level must have exactly 'industry' and 'menus'")
            return None
        industry = doc["industry"]
        if industry != path.stem:
            self.err(where, f"industry {industry!r} differs from the file name")
        menus = doc["menus"] or []
        stats = Counter()
        shape_count = Counter()
        companies = set()
        for mi, menu in enumerate(menus):
            mwhere = f"{where} menu #{mi + 1}"
            if not isinstance(menu, dict):
                self.err(mwhere, "not a mapping")
                continue
            mid = menu.get("id")
            if not isinstance(mid, str) or not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)+", mid):
                self.err(mwhere, f"bad id {mid!r}")
            else:
                mwhere = f"{where} {mid}"
                if not mid.startswith(industry + "-"):
                    self.err(mwhere, "id must start with '<industry>-'")
                if mid in seen_ids:
                    self.err(mwhere, f"id also used in {seen_ids[mid]}")
                seen_ids[mid] = where
            if not isinstance(menu.get("company"), str) or not menu["company"].strip():
                self.err(mwhere, "missing company")
            else:
                companies.add(menu["company"])
            self.check_node(menu, mwhere, 1)
            if not isinstance(menu.get("prompt"), str):
                continue
            shapes = self.check_shapes(menu, mwhere)
            shape_count.update(set(shapes))
            reqs = menu.get("requests") or []
            if len(reqs) < MIN_REQUESTS_PER_MENU:
                self.err(mwhere, f"{len(reqs)} requests (need at least {MIN_REQUESTS_PER_MENU})")
            texts = set()
            for ri, req in enumerate(reqs):
                rwhere = f"{mwhere} request #{ri + 1}"
                if not isinstance(req, dict) or not isinstance(req.get("text"), str) or not req["text"].strip():
                    self.err(rwhere, "needs a 'text'")
                    continue
                if set(req) - {"text", "paths", "note"}:
                    self.err(rwhere, f"unknown fields {sorted(set(req) - {'text', 'paths', 'note'})}")
                if req["text"] in texts:
                    self.err(rwhere, "duplicate request text in this menu")
                texts.add(req["text"])
                paths = req.get("paths")
                if not isinstance(paths, list) or not paths or not all(isinstance(p, list) and p for p in paths):
                    self.err(rwhere, "'paths' must be a non-empty list of non-empty lists")
                    continue
                if len({tuple(p) for p in paths}) != len(paths):
                    self.err(rwhere, "duplicate paths")
                for p in paths:
                    self.walk(menu, p, f"{rwhere} {p}")
                stats["requests"] += 1
                best = paths[0]
                if any(is_data(s) for s in best):
                    stats["with_data"] += 1
                if any(s.startswith("say:") for s in best):
                    stats["spoken"] += 1
                if len([s for s in best if not is_data(s)]) >= 2:
                    stats["deep"] += 1
                if str(req.get("note", "")).lower().startswith("no department fits"):
                    stats["no_fit"] += 1
            stats["menus"] += 1
            if menu.get("submenus"):
                stats["multi"] += 1
        if stats["menus"] < MIN_MENUS_PER_INDUSTRY:
            self.err(where, f"{stats['menus']} menus (need at least {MIN_MENUS_PER_INDUSTRY})")
        stats["companies"] = len(companies)
        return industry, stats, shape_count


def main():
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    files = sorted(root.glob("*.yaml"))
    ck = Checker()
    seen_ids = {}
    rows = []
    shape_total = Counter()
    for f in files:
        res = ck.check_file(f, seen_ids)
        if res:
            industry, stats, shapes = res
            rows.append((industry, stats, shapes))
            shape_total.update(shapes)

    cols = [("menus", "menus"), ("requests", "requests"), ("multi", "multi-level"),
            ("deep", "reqs 2+ keys"), ("with_data", "reqs w/ data"), ("no_fit", "reqs no-fit"),
            ("spoken", "reqs spoken"), ("shapes", "shapes used")]
    width = max([len(r[0]) for r in rows] + [len("TOTAL")])
    head = "industry".ljust(width) + "".join(f"  {c[1]:>12}" for c in cols)
    print(head)
    print("-" * len(head))
    total = Counter()
    for industry, stats, shapes in rows:
        stats = Counter(stats)
        stats["shapes"] = len(shapes)
        total.update({k: v for k, v in stats.items() if k != "shapes"})
        print(industry.ljust(width) + "".join(f"  {stats[c[0]]:>12}" for c in cols))
    total["shapes"] = len(shape_total)
    print("-" * len(head))
    print("TOTAL".ljust(width) + "".join(f"  {total[c[0]]:>12}" for c in cols))
    print()
    print(f"{len(rows)} industries, {total['menus']} menus, {total['requests']} requests")
    print()
    print("menus per shape:")
    for s in SHAPES:
        print(f"  {s:<20} {shape_total[s]:>4}   {SHAPES[s]}")

    if len(rows) < MIN_INDUSTRIES:
        ck.err("corpus", f"{len(rows)} industries (need at least {MIN_INDUSTRIES})")
    if total["menus"] < MIN_MENUS_TOTAL:
        ck.err("corpus", f"{total['menus']} menus (need at least {MIN_MENUS_TOTAL})")
    unused = [s for s in SHAPES if not shape_total[s]]
    if unused:
        ck.err("corpus", f"shapes never used: {unused}")
    if ck.errors:
        print(f"\n{len(ck.errors)} problem(s):", file=sys.stderr)
        for e in ck.errors:
            print("  " + e, file=sys.stderr)
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
