"""What the caller hears and presses. Pure: no Flask, Twilio, Redis or clock reads.

`schema` is the menu file's models and checks, `lines` the spoken lines and recordings, `speech` the matching of
spoken answers, `menu` the Menu a call walks through.
"""

from common.facts import HOME
from menus.lines import Line, Named, Phone, Value, number_clips, pieces, spoken_when
from menus.menu import DEFAULT_FILE, Menu, load_menu
from menus.schema import CALL_KEYS, HOME_KEYS, WHEN_KEYS, Language, MenuFile, Option, check, missing_variants
from menus.speech import normalize

__all__ = ["CALL_KEYS", "DEFAULT_FILE", "HOME", "HOME_KEYS", "WHEN_KEYS", "Language", "Line", "Menu", "MenuFile",
           "Named", "Option", "Phone", "Value", "check", "load_menu", "missing_variants", "normalize",
           "number_clips", "pieces", "spoken_when"]
