"""Seeded generator of tests/data/pii_messages.jsonl (kept for provenance; run once).

The gold spans were produced by this script plus about 20 hand-written lines.
"""
import json, random, re
rng = random.Random(20261115)

def luhn_complete(prefix, length):
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    for c in "0123456789":
        s = body + c
        tot = 0
        for i, ch in enumerate(reversed(s)):
            d = int(ch)
            if i % 2: d = d*2-9 if d > 4 else d*2
            tot += d
        if tot % 10 == 0:
            return s
def fmt_card(d):
    st = rng.choice(["space", "dash", "plain"])
    if len(d) == 15:
        parts = [d[:4], d[4:10], d[10:]]
    else:
        parts = [d[i:i+4] for i in range(0, len(d), 4)]
    return {"space": " ".join(parts), "dash": "-".join(parts), "plain": d}[st]
def cards():
    specs = [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16), ("4", 13), ("4", 19), ("36", 14)]
    p, n = rng.choice(specs)
    return fmt_card(luhn_complete(p, n))

IBAN_LEN = {"DE": 22, "GB": 22, "FR": 27, "NL": 18, "ES": 24, "IT": 27, "BE": 16, "AT": 20, "CH": 21, "IE": 22, "PL": 28, "PT": 25, "LU": 20}
def iban():
    cc = rng.choice(list(IBAN_LEN))
    n = IBAN_LEN[cc]
    if cc in ("GB", "IE", "NL"):
        bban = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(4)) + "".join(str(rng.randrange(10)) for _ in range(n - 8))
    elif cc == "IT":
        bban = rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") + "".join(str(rng.randrange(10)) for _ in range(n - 5))
    else:
        bban = "".join(str(rng.randrange(10)) for _ in range(n - 4))
    moved = bban + cc + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    s = f"{cc}{check:02d}{bban}"
    return " ".join(s[i:i+4] for i in range(0, len(s), 4)) if rng.random() < 0.6 else s

FIRST = ["anna", "john", "maria", "li", "pierre", "sofia", "tom", "fatima", "lukas", "emma", "noah", "olga", "raj", "chloe", "mateo"]
LAST = ["schmidt", "doe", "garcia", "wei", "dubois", "rossi", "baker", "khan", "meyer", "jones", "silva", "novak", "patel", "martin"]
DOM = ["gmail.com", "web.de", "outlook.com", "yahoo.co.uk", "example.org", "mail.example.com", "posteo.de", "orange.fr", "icloud.com", "company.co.uk", "proton.me", "libero.it"]
def email():
    f, l, d = rng.choice(FIRST), rng.choice(LAST), rng.choice(DOM)
    form = rng.choice(["{f}.{l}", "{f}_{l}", "{f}{n}", "{f}.{l}+orders", "{f0}{l}", "{f}-{l}{n}", "{F}.{L}"])
    local = form.format(f=f, l=l, n=rng.randrange(1, 99), f0=f[0], F=f.capitalize(), L=l.capitalize())
    return f"{local}@{d}"

PHONES = ["+447911123456", "+4915123456789", "+33612345678", "+14155552671", "+31612345678",
    "+44 20 7946 0958", "+44 7911 123456", "+1 (415) 555-2671", "+1 415-555-2671", "+49 30 1234567",
    "(555) 123-4567", "(212) 555-0199", "212-555-0199", "415.555.2671", "1-800-555-0199",
    "0049 30 1234567", "0044 20 7946 0958", "0033 1 42 68 53 00", "06 12 34 56 78", "01 42 68 53 00",
    "020 7946 0958", "07700 900123", "0161 496 0000", "030 1234567", "0151 23456789", "030/1234567",
    "06-12345678", "+34 612 345 678", "91 123 45 67", "+39 06 1234 5678", "347 123 4567",
    "+32 470 12 34 56", "0470 12 34 56", "+41 44 668 18 00", "044 668 18 00", "087 123 4567",
    "+43 1 5123456", "0664 1234567", "+353 87 123 4567", "+31 20 123 4567"]
BARE_PHONES = ["4155552671", "07911123456", "0612345678", "015123456789"]
ADDRS = ["12 Baker Street", "221B Baker St.", "10 Downing Street", "742 Evergreen Terrace", "1600 Pennsylvania Avenue",
    "350 Fifth Avenue", "4 Privet Drive", "31 Spooner St", "27 Old Gloucester Road", "8 Queens Gate Mews", "19 Maple Ave.",
    "Hauptstraße 5", "Berliner Straße 12", "Lindenweg 3a", "Schillerplatz 7", "Goethestr. 21", "Am Kupfergraben 6",
    "12 rue de Rivoli", "5 rue Victor Hugo", "Calle Mayor 7", "Via Roma 10", "Keizersgracht 123", "Kalverstraat 92",
    "88 Church Lane", "3 Station Road", "1 Infinite Loop"]
# Addresses without a known street word ("Am Kupfergraben 6", "1 Infinite Loop") are gold too: misses show up in recall.
def ssn():
    while True:
        a, g, s = rng.randrange(1, 899), rng.randrange(1, 99), rng.randrange(1, 9999)
        if a != 666: return f"{a:03d}-{g:02d}-{s:04d}"
def nino():
    first = "ABCEGHJKLMNPRSTWXYZ"; second = "ABCEGHJKLMNPRSTWXYZ"
    while True:
        p = rng.choice(first) + rng.choice(second)
        if p not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"): break
    d = "".join(str(rng.randrange(10)) for _ in range(6))
    suf = rng.choice("ABCD")
    return f"{p} {d[:2]} {d[2:4]} {d[4:]} {suf}" if rng.random() < 0.5 else f"{p}{d}{suf}"
def dni():
    if rng.random() < 0.6:
        n = rng.randrange(10**7, 10**8); return f"{n}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"
    x = rng.choice("XYZ"); n = rng.randrange(10**6, 10**7)
    return f"{x}{n:07d}{'TRWAGMYFPDXBNJZSQVHLCKE'[int(str('XYZ'.index(x)) + f'{n:07d}') % 23]}"
def govid():
    return rng.choice([ssn, nino, dni])()

ORD = lambda: rng.choice(["A", "B", "C"]) + str(rng.randrange(10000, 99999))
SKU = lambda: f"SKU-{rng.choice(['PH','TV','HM','KT','SP'])}-{rng.randrange(1, 9999):04d}"
PRICE = lambda: rng.choice(["€1,299.00", "$49.99", "£15", "1.299,00 €", "EUR 89.90", "€24,95", "$1,050", "129.00 EUR", "£7.50"])
DATE = lambda: rng.choice(["2026-11-15", "15/11/2026", "11/15/26", "03.12.2026", "2026-01-07", "30/09/2026"])
TIME = lambda: rng.choice(["14:30", "9:05 am", "17:00", "08:15"])
TRACK = lambda: rng.choice(["1Z999AA10123456784", "JD014600006281234567", "9400 1000 0000 0000 0000 00", "00340434161094042557", "RR123456785DE"])
LONGORD = lambda: rng.choice(["113542617735902", "#458812", "#1002345", "order no. 7781234"])

GEN = {"EMAIL": email, "PHONE": lambda: rng.choice(PHONES), "CARD": cards, "IBAN": iban, "ADDRESS": lambda: rng.choice(ADDRS), "GOV_ID": govid}
FILL = {"ORD": ORD, "SKU": SKU, "PRICE": PRICE, "DATE": DATE, "TIME": TIME, "TRACK": TRACK, "LONGORD": LONGORD}

PII_T = [
 "Hi, my order {ORD} hasn't arrived. You can reach me at {EMAIL}.",
 "Please call me back on {PHONE}, I'm free after {TIME}.",
 "I paid with card {CARD} for order {ORD} but was charged twice ({PRICE}).",
 "Refund the {PRICE} to my account {IBAN} please.",
 "Can you change the delivery address of {ORD} to {ADDRESS}?",
 "My SSN is {GOV_ID}, do you need it for the invoice?",
 "This is {EMAIL}, phone {PHONE}. Order {ORD} arrived broken on {DATE}.",
 "Send the replacement for {SKU} to {ADDRESS}, London.",
 "IBAN: {IBAN}\nName on account: the same as on order {ORD}.",
 "card number {CARD} expiry 09/28, why was it declined?",
 "I moved! New address: {ADDRESS}. My mobile: {PHONE}.",
 "Contact {EMAIL} or {EMAIL} about the return of {SKU}.",
 "Hello, I want my money back. Bank details {IBAN}, amount {PRICE}.",
 "Ring me at {PHONE} regarding tracking {TRACK}.",
 "Why does {ORD} show delivered on {DATE}? I live at {ADDRESS} and nothing came.",
 "Here is my national insurance number {GOV_ID} for the warranty form.",
 "The charge on {CARD} of {PRICE} is wrong, my order was {ORD}.",
 "wrong email on my account, it should be {EMAIL} not the old one",
 "Lieferadresse bitte ändern: {ADDRESS}, 10115 Berlin. Tel. {PHONE}",
 "Please update my phone to {PHONE} and email to {EMAIL}.",
 "DNI {GOV_ID} - necesito la factura del pedido {ORD}.",
 "I used my card ending... actually full number {CARD}, sorry. Can you delete it?",
 "Pay the refund into {IBAN} (account holder is me).",
 "Package {TRACK} was left at {ADDRESS} instead of my house.",
 "{EMAIL}",
 "{PHONE}",
 "call me: {PHONE}!!",
 "My details: {EMAIL} / {PHONE} / {ADDRESS}",
 "Reach me on WhatsApp {PHONE} about order {ORD} placed at {TIME}.",
 "I got an email from {EMAIL} asking for my card {CARD}, is that you??",
 "Invoice for {ORD} should go to {EMAIL}, VAT included in {PRICE}.",
 "my bank is {IBAN}. refund {PRICE} asap",
 "Ship it to {ADDRESS} before {DATE} please, SKU {SKU}.",
 "Social security {GOV_ID} was typed by mistake into the note field of {ORD}, please remove it.",
 "The courier called from {PHONE} but I was at work till {TIME}.",
]
BARE_T = [
 "call me on {BARE}, thanks",
 "my mobile is {BARE} if the driver needs it",
 "Phone: {BARE}",
]
SAFE_T = [
 "Where is my order {ORD}? It was due on {DATE}.",
 "Order {LONGORD} still not shipped, tracking {TRACK} shows nothing.",
 "Is {SKU} back in stock? The price {PRICE} seems high.",
 "I ordered 3 x {SKU} at {TIME} on {DATE}, only 2 came.",
 "Can I return {ORD}? I paid {PRICE} on {DATE}.",
 "My parcel {TRACK} says out for delivery since {TIME}.",
 "Reference {LONGORD}, invoice INV-2026-00042, total {PRICE}.",
 "Do you ship size 42 of {SKU} to Austria? Delivery by {DATE} would be great.",
 "The promo code SAVE20 didn't work on {ORD} ({PRICE}).",
 "I need 2 more of {SKU}, same as order {LONGORD}.",
 "Warranty for {SKU} bought {DATE}, order {ORD}, 24 months right?",
 "Tracking {TRACK} and {TRACK} both stuck since {DATE} {TIME}.",
 "Galaxy S24 case, model RTX 4090 box, 250 ml bottle x 6 - order {ORD}.",
 "Refund of {PRICE} for {LONGORD} hasn't shown up after 14 days.",
]

def render(tpl):
    out, spans, pos = [], [], 0
    for m in re.finditer(r"\{(\w+)\}", tpl):
        out.append(tpl[pos:m.start()]); pos = m.end()
        key = m.group(1)
        cur = sum(len(x) for x in out)
        if key in GEN:
            v = GEN[key](); spans.append({"kind": key, "start": cur, "end": cur + len(v)})
        elif key == "BARE":
            v = rng.choice(BARE_PHONES); spans.append({"kind": "PHONE", "start": cur, "end": cur + len(v)})
        else:
            v = FILL[key]()
        out.append(v)
    out.append(tpl[pos:])
    return "".join(out), spans


HAND = [
 ("hey!! my email is Maria.Lopez@Correo.ES and the parcel 1Z999AA10123456784 is lost", [("EMAIL", "Maria.Lopez@Correo.ES")]),
 ("I'm at 14 Station Road until 18:30, then call +44 7700 900123.", [("ADDRESS", "14 Station Road"), ("PHONE", "+44 7700 900123")]),
 ("Order A10023 and #458812 both cost €1,299.00, delivered 2026-11-15 at 09:45.", []),
 ("Ref 113542617735902 is my order number, not a card.", []),
 ("SKU-PH-0012 x 2, SKU-TV-0420 x 1, total $2,310.50 incl. VAT 19%.", []),
 ("Tel: +49 (0)30 1234567 (Büro), mobil 0151 23456789", [("PHONE", "+49 (0)30 1234567"), ("PHONE", "0151 23456789")]),
 ("My IBAN is nl91abna0417164300 - lower case, sorry", [("IBAN", "nl91abna0417164300")]),
 ("Card 3782-822463-10005 (amex), order C55512.", [("CARD", "3782-822463-10005")]),
 ("Delivered to 1600 Pennsylvania Avenue instead of 16 Pennsylvania Avenue!!", [("ADDRESS", "1600 Pennsylvania Avenue"), ("ADDRESS", "16 Pennsylvania Avenue")]),
 ("Between 10:00-12:00 on 15/11/2026 please; code 4711; 3 boxes of 12.", []),
 ("Model 2026-XL, batch 0042-7781, serial SN-99812-AB.", []),
 ("I was charged 4 times: 19.99, 19.99, 19.99 and 19.99 EUR.", []),
 ("Pls send to anna@example.org,tom@example.org", [("EMAIL", "anna@example.org"), ("EMAIL", "tom@example.org")]),
 ("Account holder: me. FR76 3000 6000 0112 3456 7890 189. Refund 45,00 €.", [("IBAN", "FR76 3000 6000 0112 3456 7890 189")]),
 ("Warranty number W-2026-000153 for my kettle, bought 3 weeks ago.", []),
 ("call me at (020) 7946 0958 or email j.smith+returns@mail.example.com", [("PHONE", "(020) 7946 0958"), ("EMAIL", "j.smith+returns@mail.example.com")]),
 ("Version 1.2.3 of the app shows order 7781234 twice.", []),
 ("The voucher GIFT-2026-ABCD expired on 31.12.2026?", []),
 ("SSN 078-05-1120 was printed on my invoice! Remove it.", [("GOV_ID", "078-05-1120")]),
 ("NINO QQ123456C is a test value, but AB 12 34 56 C is mine.", [("GOV_ID", "AB 12 34 56 C")]),
]
def hand_rows():
    out = []
    for text, items in HAND:
        spans, pos = [], 0
        for kind, sub in items:
            i = text.index(sub, pos); spans.append({"kind": kind, "start": i, "end": i + len(sub)}); pos = i + len(sub)
        out.append((text, spans))
    return out
rows = hand_rows()
for i in range(175):
    rows.append(render(PII_T[i % len(PII_T)]))
for i in range(9):
    rows.append(render(BARE_T[i % len(BARE_T)]))
for i in range(45):
    rows.append(render(SAFE_T[i % len(SAFE_T)]))
# Every phone format at least once.
for ph in PHONES:
    t = f"New number for the delivery driver: {ph}"
    rows.append((t, [{"kind": "PHONE", "start": t.index(ph), "end": len(t)}]))
for a in ADDRS:
    t = f"Please deliver to {a}, thanks."
    rows.append((t, [{"kind": "ADDRESS", "start": 18, "end": 18 + len(a)}]))
rng.shuffle(rows)
with open("/work/main/tests/data/pii_messages.jsonl", "w") as f:
    for text, spans in rows:
        f.write(json.dumps({"text": text, "pii": spans}, ensure_ascii=False) + "\n")
print(len(rows), sum(1 for _, s in rows if not s))
