"""The demo shop's fixed catalog: products, brands, compatibility and consumables.

The catalog does not depend on the seed, so product ids, prices and complements are
stable across generated shops (help articles and tests can name them). Each main
product lists the accessories that fit it as `complements` (a phone lists its own
case and screen protector, its brand's charger...), consumables carry a re-buy
cadence (`replenish_days`), and `kind` tells the purchase simulation how the item
is usually bought: "main" and "filler" on their own, "accessory" mostly after a main
item, "consumable" on a cadence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TOP_CATEGORIES = (
    "Electronics",
    "Computers",
    "Home & Kitchen",
    "Grocery",
    "Office",
    "Personal Care",
    "Health",
    "Pet Supplies",
    "Sports",
    "Garden",
)


@dataclass
class ProductSpec:
    product_id: str
    title: str
    brand: str
    category: str
    price: float
    warranty_months: int
    replenish_days: int
    kind: str  # main | accessory | consumable | filler
    description: str
    complements: list[str] = field(default_factory=list)

    @property
    def top(self) -> str:
        return self.category.split("/", 1)[0]


class _Catalog:
    def __init__(self) -> None:
        self.items: list[ProductSpec] = []
        self._n: dict[str, int] = {}

    def add(
        self,
        code: str,
        title: str,
        brand: str,
        category: str,
        price: float,
        *,
        kind: str = "filler",
        warranty: int = 0,
        replenish: int = 0,
        blurb: str = "",
    ) -> str:
        self._n[code] = self._n.get(code, 0) + 1
        pid = f"{code}-{self._n[code]:04d}"
        desc = f"{title} by {brand}. {blurb}".strip()
        self.items.append(
            ProductSpec(
                pid, title, brand, category, round(price, 2), warranty, replenish, kind, desc
            )
        )
        return pid

    def link(self, main: str, *accessories: str) -> None:
        spec = next(p for p in self.items if p.product_id == main)
        spec.complements.extend(a for a in accessories if a not in spec.complements)


def _phones(c: _Catalog) -> None:
    for brand, models, base in (
        ("Novaphone", ("N5", "N5 Pro", "N6 Lite"), 399.0),
        ("Zentek", ("Z10", "Z10 Max", "Z Fold"), 449.0),
        ("Orbit", ("Orbit 3", "Orbit 3 Mini", "Orbit 4"), 299.0),
    ):
        charger = c.add(
            "CHG",
            f"{brand} 30W USB-C Fast Charger",
            brand,
            "Electronics/Phones/Chargers",
            29.9,
            kind="accessory",
            warranty=12,
            blurb="Charges compatible phones to 50% in about 25 minutes.",
        )
        buds = c.add(
            "AUD",
            f"{brand} Buds Wireless Earbuds",
            brand,
            "Electronics/Audio",
            89.0 + base / 20,
            kind="accessory",
            warranty=12,
            blurb="Pairs instantly with the brand's phones; 24 h battery with case.",
        )
        for i, model in enumerate(models):
            phone = c.add(
                "PHN",
                f"{brand} {model} Smartphone 128 GB",
                brand,
                "Electronics/Phones",
                base + 150 * i,
                kind="main",
                warranty=24,
                blurb="6.4-inch OLED display, dual camera, 5G, USB-C.",
            )
            case = c.add(
                "CAS",
                f"Clear Case for {brand} {model}",
                "Shellguard",
                "Electronics/Phones/Cases",
                19.9,
                kind="accessory",
                blurb=f"Shock-absorbing clear case made to fit the {brand} {model}.",
            )
            folio = c.add(
                "CAS",
                f"Leather Folio Case for {brand} {model}",
                "Shellguard",
                "Electronics/Phones/Cases",
                39.9,
                kind="accessory",
                blurb="Genuine leather folio with two card slots.",
            )
            glass = c.add(
                "SCR",
                f"Tempered Glass Screen Protector for {brand} {model}",
                "Shellguard",
                "Electronics/Phones/Screen Protectors",
                14.9,
                kind="accessory",
                blurb="9H tempered glass, bubble-free fitting kit.",
            )
            c.link(phone, case, glass, charger, folio, buds)
    c.add("CBL", "USB-C to USB-C Cable 1 m", "Voltline", "Electronics/Cables", 9.9)
    c.add("CBL", "USB-C to Lightning Cable 1 m", "Voltline", "Electronics/Cables", 12.9)
    c.add("PWR", "Power Bank 10,000 mAh", "Voltline", "Electronics/Power", 29.9, warranty=12)
    c.add("PWR", "Power Bank 20,000 mAh", "Voltline", "Electronics/Power", 44.9, warranty=12)
    for brand, size, price in (("Vistra", 43, 379.0), ("Vistra", 55, 549.0), ("Lumen", 65, 799.0)):
        tv = c.add(
            "TV",
            f'{brand} {size}" 4K Smart TV',
            brand,
            "Electronics/TV",
            price,
            kind="main",
            warranty=24,
            blurb="HDR10, three HDMI ports, built-in apps.",
        )
        mount = c.add(
            "MNT",
            f'Tilting Wall Mount for {size}" TVs',
            "Mountix",
            "Electronics/TV/Mounts",
            24.9 + size / 5,
            kind="accessory",
        )
        c.link(tv, mount)
    hdmi = c.add("CBL", "High-Speed HDMI 2.1 Cable 2 m", "Voltline", "Electronics/Cables", 14.9)
    bar = c.add(
        "AUD",
        "Vistra Soundbar 2.1 with Subwoofer",
        "Vistra",
        "Electronics/Audio",
        199.0,
        kind="accessory",
        warranty=24,
    )
    for tv in (p.product_id for p in c.items if p.category == "Electronics/TV"):
        c.link(tv, hdmi, bar)
    c.add(
        "AUD",
        "Over-Ear Noise-Cancelling Headphones",
        "Sonora",
        "Electronics/Audio",
        179.0,
        kind="main",
        warranty=24,
    )


def _computers(c: _Catalog) -> None:
    sleeves = {
        s: c.add(
            "SLV",
            f"Neoprene Laptop Sleeve {s}-inch",
            "Carrywell",
            "Computers/Accessories/Sleeves",
            19.9 + s,
            kind="accessory",
            blurb=f"Water-resistant sleeve for {s}-inch laptops.",
        )
        for s in (13, 14, 16)
    }
    docks = [
        c.add(
            "DCK",
            "USB-C Docking Station 8-in-1",
            "Portly",
            "Computers/Accessories/Docks",
            69.0,
            kind="accessory",
            warranty=24,
        ),
        c.add(
            "DCK",
            "USB-C Travel Hub 4-in-1",
            "Portly",
            "Computers/Accessories/Docks",
            34.9,
            kind="accessory",
            warranty=24,
        ),
    ]
    for brand, base in (("Lumen", 749.0), ("Kestrel", 899.0), ("Arcbook", 1099.0)):
        mouse = c.add(
            "MOU",
            f"{brand} Silent Wireless Mouse",
            brand,
            "Computers/Accessories/Mice",
            29.9,
            kind="accessory",
            warranty=24,
        )
        for i, size in enumerate((13, 14, 16)):
            laptop = c.add(
                "LAP",
                f"{brand} {size}-inch Laptop 16 GB / 512 GB",
                brand,
                "Computers/Laptops",
                base + 200 * i,
                kind="main",
                warranty=24,
                blurb="Aluminium body, all-day battery, backlit keyboard.",
            )
            c.link(laptop, sleeves[size], mouse, *docks)
    kb = c.add(
        "KEY",
        "Mechanical Keyboard TKL",
        "Typecraft",
        "Computers/Accessories/Keyboards",
        89.0,
        kind="main",
        warranty=24,
    )
    caps = c.add(
        "KEY",
        "PBT Keycap Set",
        "Typecraft",
        "Computers/Accessories/Keyboards",
        29.9,
        kind="accessory",
    )
    c.link(kb, caps)
    mon = c.add(
        "MON",
        "27-inch QHD Monitor",
        "Vistra",
        "Computers/Monitors",
        279.0,
        kind="main",
        warranty=24,
    )
    arm = c.add(
        "MON", "Single Monitor Arm", "Mountix", "Computers/Monitors", 49.9, kind="accessory"
    )
    c.link(mon, arm, docks[0])
    c.add("STO", "Portable SSD 1 TB", "Datavault", "Computers/Storage", 99.0, warranty=36)
    c.add("STO", "USB Flash Drive 128 GB", "Datavault", "Computers/Storage", 17.9, warranty=24)
    c.add("WEB", "Full HD Webcam", "Portly", "Computers/Accessories", 49.9, warranty=24)


def _kitchen_and_grocery(c: _Catalog) -> None:
    frother = c.add(
        "FRO",
        "Milk Frother Pro",
        "Brewmaster",
        "Home & Kitchen/Coffee",
        59.9,
        kind="accessory",
        warranty=24,
    )
    beans = [
        c.add(
            "BEA",
            f"{name} Whole Coffee Beans 1 kg",
            "Roastery Nord",
            "Grocery/Coffee",
            price,
            kind="consumable",
            replenish=21,
            blurb=blurb,
        )
        for name, price, blurb in (
            ("Espresso Classico", 18.9, "Dark roast, notes of cocoa and hazelnut."),
            ("Crema Dolce", 19.9, "Medium roast for bean-to-cup machines."),
            ("Single Origin Ethiopia", 24.9, "Light roast with berry notes."),
            ("Decaf Swiss Water", 21.9, "Chemical-free decaffeinated blend."),
        )
    ]
    for brand, kind_name, models, base in (
        ("Brewmaster", "Bean-to-Cup Coffee Machine", ("B300", "B500", "B700"), 349.0),
        ("Caffia", "Capsule Coffee Machine", ("Mini", "Classic", "Lattissima"), 89.0),
    ):
        descaler = c.add(
            "DES",
            f"{brand} Descaler 500 ml",
            brand,
            "Home & Kitchen/Coffee",
            12.9,
            kind="consumable",
            replenish=90,
            blurb="Removes limescale safely.",
        )
        capsules = []
        if brand == "Caffia":
            capsules = [
                c.add(
                    "CAP",
                    f"Caffia Capsules {flavour} x30",
                    "Caffia",
                    "Grocery/Coffee",
                    9.9,
                    kind="consumable",
                    replenish=21,
                    blurb="Fits Caffia capsule machines only.",
                )
                for flavour in ("Intenso", "Lungo", "Vanilla")
            ]
        for i, model in enumerate(models):
            machine = c.add(
                "COF",
                f"{brand} {model} {kind_name}",
                brand,
                "Home & Kitchen/Coffee Machines",
                base + (180 if capsules else 250) * i,
                kind="main",
                warranty=24,
            )
            fit = capsules or beans[i % 2 : i % 2 + 2]
            c.link(machine, *fit, descaler, frother)
    for brand, base in (("Cyclo", 149.0), ("Dustin", 219.0)):
        bags = c.add(
            "BAG",
            f"{brand} Dust Bags x10",
            brand,
            "Home & Kitchen/Vacuums/Supplies",
            12.9,
            kind="consumable",
            replenish=45,
        )
        for i, model in enumerate(("Compact", "Power", "Cordless")):
            vac = c.add(
                "VAC",
                f"{brand} {model} Vacuum Cleaner",
                brand,
                "Home & Kitchen/Vacuums",
                base + 120 * i,
                kind="main",
                warranty=24,
            )
            filt = c.add(
                "FLT",
                f"HEPA Filter for {brand} {model}",
                brand,
                "Home & Kitchen/Vacuums/Supplies",
                19.9,
                kind="consumable",
                replenish=60,
            )
            c.link(vac, filt, *([bags] if model != "Cordless" else []))
    jug = c.add(
        "JUG",
        "Clearflow Water Filter Jug 2.4 l",
        "Clearflow",
        "Home & Kitchen/Water Filters",
        24.9,
        kind="main",
    )
    cart = c.add(
        "FLT",
        "Clearflow Filter Cartridges x3",
        "Clearflow",
        "Home & Kitchen/Water Filters",
        17.9,
        kind="consumable",
        replenish=60,
    )
    c.link(jug, cart)
    blender = c.add(
        "BLN",
        "High-Speed Blender 1.5 l",
        "Mixwell",
        "Home & Kitchen/Appliances",
        129.0,
        kind="main",
        warranty=24,
    )
    cup = c.add(
        "BLN",
        "Blender To-Go Cup Set",
        "Mixwell",
        "Home & Kitchen/Appliances",
        24.9,
        kind="accessory",
    )
    c.link(blender, cup)
    pan = c.add("PAN", "Non-Stick Frying Pan 28 cm", "Ferro", "Home & Kitchen/Cookware", 39.9)
    oil = c.add(
        "OIL",
        "Extra Virgin Olive Oil 1 l",
        "Campo Verde",
        "Grocery/Pantry",
        11.9,
        kind="consumable",
        replenish=35,
    )
    c.link(pan, oil)
    c.add("KNF", "Chef's Knife 20 cm", "Ferro", "Home & Kitchen/Cookware", 59.0)
    c.add("SCL", "Digital Kitchen Scale", "Mixwell", "Home & Kitchen/Appliances", 19.9)
    c.add(
        "TEA",
        "Organic Green Tea 100 bags",
        "Leafhouse",
        "Grocery/Tea",
        8.9,
        kind="consumable",
        replenish=40,
    )
    c.add(
        "CHO",
        "Dark Chocolate 85% 100 g x5",
        "Cacao Lane",
        "Grocery/Snacks",
        12.5,
        kind="consumable",
        replenish=25,
    )


def _office(c: _Catalog) -> None:
    paper = c.add(
        "PAP",
        "Copy Paper A4 80 g 500 sheets",
        "Papyra",
        "Office/Paper",
        6.9,
        kind="consumable",
        replenish=60,
    )
    for brand, models, base in (
        ("Inkwell", ("Home 200", "Office 400"), 89.0),
        ("Printa", ("P10", "P20 Duo"), 129.0),
    ):
        for i, model in enumerate(models):
            printer = c.add(
                "PRN",
                f"{brand} {model} Inkjet Printer",
                brand,
                "Office/Printers",
                base + 110 * i,
                kind="main",
                warranty=24,
            )
            black = c.add(
                "INK",
                f"{brand} {model} Ink Cartridge Black",
                brand,
                "Office/Ink & Toner",
                21.9,
                kind="consumable",
                replenish=45,
                blurb=f"Original cartridge, fits {brand} {model} only.",
            )
            color = c.add(
                "INK",
                f"{brand} {model} Ink Cartridge Colour",
                brand,
                "Office/Ink & Toner",
                27.9,
                kind="consumable",
                replenish=60,
                blurb=f"Original tri-colour cartridge, fits {brand} {model} only.",
            )
            c.link(printer, black, color, paper)
    chair = c.add(
        "CHR",
        "Ergonomic Office Chair",
        "Sitwell",
        "Office/Furniture",
        249.0,
        kind="main",
        warranty=24,
    )
    mat = c.add(
        "CHR", "Chair Floor Mat 120x90", "Sitwell", "Office/Furniture", 39.9, kind="accessory"
    )
    c.link(chair, mat)
    c.add("NTB", "Dotted Notebook A5", "Papyra", "Office/Stationery", 12.9)
    c.add(
        "PEN", "Gel Pens x10", "Papyra", "Office/Stationery", 7.9, kind="consumable", replenish=90
    )


def _care_and_health(c: _Catalog) -> None:
    gel = c.add(
        "GEL",
        "Sensitive Shaving Gel 200 ml",
        "Glide",
        "Personal Care/Shaving",
        4.9,
        kind="consumable",
        replenish=30,
    )
    for brand in ("Keenblade", "Glide"):
        blades = c.add(
            "BLD",
            f"{brand} Razor Blades x8",
            brand,
            "Personal Care/Shaving",
            19.9,
            kind="consumable",
            replenish=28,
            blurb=f"Fits all {brand} razor handles.",
        )
        razor = c.add(
            "RAZ",
            f"{brand} 5-Blade Razor Handle",
            brand,
            "Personal Care/Shaving",
            11.9,
            kind="main",
        )
        c.link(razor, blades, gel)
        shaver = c.add(
            "SHV",
            f"{brand} Electric Shaver Series 7",
            brand,
            "Personal Care/Shaving",
            149.0,
            kind="main",
            warranty=24,
        )
        clean = c.add(
            "CLN",
            f"{brand} Shaver Cleaning Cartridges x3",
            brand,
            "Personal Care/Shaving",
            16.9,
            kind="consumable",
            replenish=60,
        )
        c.link(shaver, clean)
    tb = c.add(
        "BRS",
        "Sonic Electric Toothbrush",
        "Brightsmile",
        "Personal Care/Oral Care",
        79.0,
        kind="main",
        warranty=24,
    )
    heads = c.add(
        "BRS",
        "Sonic Brush Heads x4",
        "Brightsmile",
        "Personal Care/Oral Care",
        19.9,
        kind="consumable",
        replenish=90,
    )
    paste = c.add(
        "PST",
        "Whitening Toothpaste 75 ml",
        "Brightsmile",
        "Personal Care/Oral Care",
        3.9,
        kind="consumable",
        replenish=30,
    )
    c.link(tb, heads, paste)
    c.add(
        "SHA",
        "Argan Shampoo 400 ml",
        "Pura",
        "Personal Care/Hair",
        8.9,
        kind="consumable",
        replenish=35,
    )
    organizer = c.add(
        "ORG", "Weekly Pill Organizer", "Vitalis", "Health/Accessories", 7.9, kind="accessory"
    )
    for name, price in (
        ("Vitamin D3 1000 IU", 9.9),
        ("Multivitamin Daily", 14.9),
        ("Omega-3 Fish Oil", 16.9),
        ("Magnesium 400 mg", 11.9),
        ("Vitamin C 500 mg", 8.9),
        ("Zinc + Selenium", 9.5),
    ):
        vit = c.add(
            "VIT",
            f"Vitalis {name} 90 tablets",
            "Vitalis",
            "Health/Vitamins",
            price,
            kind="consumable",
            replenish=30,
        )
        c.link(vit, organizer)
    for model, price in (("Fit 2", 79.0), ("Fit 3 Pro", 129.0)):
        tracker = c.add(
            "TRK",
            f"Pulsar {model} Fitness Tracker",
            "Pulsar",
            "Health/Wearables",
            price,
            kind="main",
            warranty=24,
        )
        strap = c.add(
            "STR",
            f"Sport Strap for Pulsar {model}",
            "Pulsar",
            "Health/Wearables",
            14.9,
            kind="accessory",
        )
        charge = c.add(
            "STR",
            f"Charging Cable for Pulsar {model}",
            "Pulsar",
            "Health/Wearables",
            9.9,
            kind="accessory",
        )
        c.link(tracker, strap, charge)
    c.add("THR", "Digital Thermometer", "Vitalis", "Health/Devices", 14.9, warranty=24)


def _pets(c: _Catalog) -> None:
    bowl = c.add(
        "BWL",
        "Stainless Steel Pet Bowl Set",
        "Pawfect",
        "Pet Supplies/Accessories",
        14.9,
        kind="accessory",
    )
    treats = c.add(
        "TRT",
        "Dental Chews for Dogs x28",
        "Pawfect",
        "Pet Supplies/Dog",
        9.9,
        kind="consumable",
        replenish=30,
    )
    for brand in ("Pawfect", "Wildtail"):
        for recipe, price in (("Adult Chicken & Rice 12 kg", 49.9), ("Puppy Salmon 3 kg", 21.9)):
            food = c.add(
                "DOG",
                f"{brand} Dog Food {recipe}",
                brand,
                "Pet Supplies/Dog",
                price,
                kind="consumable",
                replenish=30,
            )
            c.link(food, treats, bowl)
        for recipe, price in (("Indoor Adult Turkey 4 kg", 29.9), ("Senior Ocean Fish 2 kg", 18.9)):
            food = c.add(
                "CAT",
                f"{brand} Cat Food {recipe}",
                brand,
                "Pet Supplies/Cat",
                price,
                kind="consumable",
                replenish=30,
            )
            c.link(food, bowl)
    litter = c.add(
        "LIT",
        "Clumping Cat Litter 10 l",
        "Wildtail",
        "Pet Supplies/Cat",
        12.9,
        kind="consumable",
        replenish=21,
    )
    box = c.add("LIT", "Covered Cat Litter Box", "Wildtail", "Pet Supplies/Cat", 39.9, kind="main")
    c.link(box, litter)
    bed = c.add("BED", "Orthopaedic Dog Bed L", "Pawfect", "Pet Supplies/Dog", 69.0, kind="main")
    leash = c.add(
        "LSH", "Reflective Dog Leash 2 m", "Pawfect", "Pet Supplies/Dog", 17.9, kind="accessory"
    )
    c.link(bed, leash, treats)


def _sports_and_garden(c: _Catalog) -> None:
    socks = c.add(
        "SCK",
        "Running Socks x3",
        "Stride",
        "Sports/Running",
        14.9,
        kind="consumable",
        replenish=120,
    )
    gels = c.add(
        "GLS", "Energy Gels x12", "Apex", "Sports/Nutrition", 18.9, kind="consumable", replenish=30
    )
    bottle = c.add(
        "BTL",
        "Insulated Sports Bottle 750 ml",
        "Apex",
        "Sports/Accessories",
        19.9,
        kind="accessory",
    )
    for brand in ("Stride", "Apex"):
        for model, price in (("Road", 119.0), ("Trail", 139.0)):
            shoe = c.add(
                "SHO", f"{brand} {model} Running Shoes", brand, "Sports/Running", price, kind="main"
            )
            c.link(shoe, socks, gels, bottle)
    tubes = c.add(
        "TUB",
        "Inner Tubes 700x28c x2",
        "Velora",
        "Sports/Cycling",
        12.9,
        kind="consumable",
        replenish=120,
    )
    helmet = c.add("HLM", "City Bike Helmet", "Velora", "Sports/Cycling", 59.0, kind="accessory")
    lights = c.add(
        "LGT",
        "USB Rechargeable Bike Light Set",
        "Velora",
        "Sports/Cycling",
        34.9,
        kind="accessory",
        warranty=12,
    )
    lock = c.add("LCK", "Folding Bike Lock", "Velora", "Sports/Cycling", 49.9, kind="accessory")
    for model, price in (("City 7", 549.0), ("Gravel 2", 899.0)):
        bike = c.add(
            "BIK",
            f"Velora {model} Bicycle",
            "Velora",
            "Sports/Cycling",
            price,
            kind="main",
            warranty=24,
        )
        c.link(bike, helmet, lights, lock, tubes)
    mat = c.add("YGA", "Yoga Mat 6 mm", "Apex", "Sports/Fitness", 29.9, kind="main")
    c.add("YGA", "Resistance Bands Set", "Apex", "Sports/Fitness", 19.9)
    c.link(mat, bottle)
    seed = c.add(
        "SED",
        "Sport & Play Lawn Seed 1 kg",
        "Greenrow",
        "Garden/Lawn",
        14.9,
        kind="consumable",
        replenish=90,
    )
    feed = c.add(
        "FED", "Lawn Feed 5 kg", "Greenrow", "Garden/Lawn", 19.9, kind="consumable", replenish=75
    )
    for brand, base in (("Mowmaster", 199.0), ("Greenrow", 279.0)):
        for i, model in enumerate(("34 cm Cordless", "42 cm Cordless")):
            mower = c.add(
                "MOW",
                f"{brand} {model} Lawn Mower",
                brand,
                "Garden/Lawn Mowers",
                base + 100 * i,
                kind="main",
                warranty=24,
            )
            blade = c.add(
                "BLA",
                f"Replacement Blade for {brand} {model}",
                brand,
                "Garden/Lawn Mowers",
                17.9,
                kind="consumable",
                replenish=180,
            )
            c.link(mower, blade, seed, feed)
    hose = c.add(
        "HOS", "Expandable Garden Hose 30 m", "Greenrow", "Garden/Watering", 34.9, kind="main"
    )
    nozzle = c.add(
        "HOS", "Spray Nozzle 8 Patterns", "Greenrow", "Garden/Watering", 9.9, kind="accessory"
    )
    c.link(hose, nozzle)
    c.add("GLV", "Garden Gloves", "Greenrow", "Garden/Tools", 8.9)
    c.add(
        "TRM",
        "Cordless Hedge Trimmer",
        "Mowmaster",
        "Garden/Tools",
        129.0,
        kind="main",
        warranty=24,
    )


def build_catalog() -> list[ProductSpec]:
    """The full catalog in a fixed order (ids and complements are stable)."""
    c = _Catalog()
    for part in (
        _phones,
        _computers,
        _kitchen_and_grocery,
        _office,
        _care_and_health,
        _pets,
        _sports_and_garden,
    ):
        part(c)
    return c.items


FIRST_NAMES = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Emma",
    "Felix",
    "Greta",
    "Hugo",
    "Ida",
    "Jonas",
    "Klara",
    "Leon",
    "Lena",
    "Luca",
    "Marie",
    "Max",
    "Mia",
    "Noah",
    "Olivia",
    "Paul",
    "Sophie",
    "Theo",
    "Valentina",
    "Yusuf",
    "Zoe",
    "Amir",
    "Chiara",
    "Elias",
    "Fatima",
    "Hannah",
    "Ines",
    "Jan",
    "Julia",
    "Karim",
    "Lars",
    "Lucia",
    "Mateo",
    "Nina",
    "Oskar",
    "Priya",
    "Rafael",
    "Sara",
    "Tobias",
    "Ursula",
    "Viktor",
]
LAST_NAMES = [
    "Schmidt",
    "Muller",
    "Rossi",
    "Dubois",
    "Jansen",
    "Novak",
    "Kowalski",
    "Silva",
    "Garcia",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Kruger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Werner",
    "Krause",
    "Lehmann",
    "Martin",
    "Bernard",
    "Moreau",
    "Laurent",
    "Peeters",
    "Visser",
    "Bakker",
    "Lindqvist",
    "Nielsen",
    "Horvat",
    "Costa",
    "Romano",
    "Ferrari",
    "Esposito",
]
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
RETURN_REASONS = (
    "Does not fit",
    "Arrived damaged",
    "Changed my mind",
    "Not as described",
    "Stopped working",
    "Wrong item sent",
    "Found a better price",
    "Arrived too late",
)
