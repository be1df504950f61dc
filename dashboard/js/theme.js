// Light and dark themes. "auto" follows the system; the button cycles
// auto → light → dark, and the choice is remembered. <html data-theme>
// always names the theme on screen, so the CSS and the charts need only
// look at one place.

import { byId } from './dom.js';

const MODES = ['auto', 'light', 'dark'];
const STORAGE_KEY = 'nta-theme';
const systemDark = matchMedia('(prefers-color-scheme: dark)');

function storedMode() {
  const mode = localStorage.getItem(STORAGE_KEY);
  return MODES.includes(mode) ? mode : 'auto';
}

function apply(mode) {
  const theme = mode === 'auto' ? (systemDark.matches ? 'dark' : 'light') : mode;
  document.documentElement.dataset.theme = theme;
  const button = byId('theme-toggle');
  button.textContent = `Theme: ${mode}`;
  button.setAttribute('aria-label', `Theme: ${mode} (showing ${theme}). Change theme`);
}

/** Applies the stored theme and wires the toggle; `onChange` runs after each change. */
export function initTheme(onChange) {
  let mode = storedMode();
  apply(mode);
  byId('theme-toggle').addEventListener('click', () => {
    mode = MODES[(MODES.indexOf(mode) + 1) % MODES.length];
    localStorage.setItem(STORAGE_KEY, mode);
    apply(mode);
    onChange();
  });
  systemDark.addEventListener('change', () => {
    if (mode !== 'auto') return;
    apply(mode);
    onChange();
  });
}
