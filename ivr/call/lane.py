"""Where a caller is on their way to a person, carried in the signed action URLs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lane:
    """Where a caller is on their way to a person, carried in the action URLs: the option routed by, the caller's
    language, the chain step, the urgent lane (a caller in crisis, taken first), and whose wording they hear (the
    option they chose, when they are routed by another: an under-18 caller put through to the general line)."""

    option: str
    lang: str
    step: int = 0
    urgent: bool = False
    wording: str | None = None
    first: str | None = None  # the partner a shared shift gave this call, so its later steps keep that order

    @property
    def words(self) -> str:
        """The option whose wording the caller hears."""
        return self.wording or self.option

    @property
    def params(self) -> dict[str, str | int]:
        """The lane as action URL parameters (o, l, s; u, w and f only when set)."""
        out: dict[str, str | int] = {"o": self.option, "l": self.lang, "s": self.step}
        if self.urgent:
            out["u"] = 1
        if self.wording and self.wording != self.option:
            out["w"] = self.wording
        if self.first:
            out["f"] = self.first
        return out
