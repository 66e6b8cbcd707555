"""What the caller hears and presses. Pure: no Flask, Twilio, Redis or clock reads."""

from menus.menu import HOME, Line, Menu, Named, Option, Phone, load_menu, spoken_when

__all__ = ["HOME", "Line", "Menu", "Named", "Option", "Phone", "load_menu", "spoken_when"]
