// The operator console's script (served from the binary, allowed by the CSP as 'self'; no
// inline script anywhere). The fleet view's live updates come next; for now it only marks
// the page as scripted, so keyboard focus styles and forms work without it.
"use strict";
document.documentElement.dataset.scripted = "true";
