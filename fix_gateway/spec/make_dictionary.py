"""Write FIX44-gw.xml: QuickFIX's stock FIX44.xml plus our user-defined fields (20000-39999).

    python -m fix_gateway.spec.make_dictionary PATH/TO/quickfix/spec/FIX44.xml

The stock file ships in the quickfix 1.16.0 sdist (``spec/FIX44.xml``) and is installed as
``<venv>/share/quickfix/FIX44.xml``. Run again whenever a field below changes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from fix_gateway.tags import USER_FIELDS


def extend(stock: str) -> str:
    text = stock
    for number, name, kind, messages in USER_FIELDS:
        text = text.replace(" </fields>", f" <field number='{number}' name='{name}' "
                                          f"type='{kind}' />\n </fields>", 1)
        for message in messages:
            opening = re.search(rf"<message name='{message}' msgtype='[^']+' msgcat='app'>\n",
                                text)
            if opening is None:
                raise SystemExit(f"no message {message} in the stock dictionary")
            text = (text[:opening.end()] + f"   <field name='{name}' required='N' />\n"
                    + text[opening.end():])
    return text


if __name__ == "__main__":
    source = Path(sys.argv[1])
    target = Path(__file__).with_name("FIX44-gw.xml")
    target.write_text(extend(source.read_text()))
    print(f"wrote {target}")
