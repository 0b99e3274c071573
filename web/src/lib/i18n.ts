// Russian first, English second: chosen from the browser's languages, with a
// switch that is remembered. Every string lives in src/i18n/*.json.
import en from "../i18n/en.json";
import ru from "../i18n/ru.json";

export type Lang = "ru" | "en";
type Key = keyof typeof ru;
const tables: Record<Lang, Record<Key, string>> = { ru, en };
const STORAGE = "facepass.lang";

export function initialLang(): Lang {
  try {
    const saved = localStorage.getItem(STORAGE);
    if (saved === "ru" || saved === "en") return saved;
  } catch {
    // storage may be blocked; fall through
  }
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language];
  for (const l of wanted) {
    const base = (l || "").toLowerCase().split("-")[0];
    if (base === "ru" || base === "uk" || base === "be" || base === "kk") return "ru";
    if (base === "en") return "en";
  }
  return "ru";
}

export function saveLang(lang: Lang) {
  try {
    localStorage.setItem(STORAGE, lang);
  } catch {
    // not remembered; still switched
  }
  document.documentElement.lang = lang;
}

export type T = (key: Key, vars?: Record<string, string | number>) => string;

/// Fills `{name}` placeholders.
export function format(text: string, vars?: Record<string, string | number>): string {
  return text.replace(/\{(\w+)\}/g, (_, name: string) =>
    vars && name in vars ? String(vars[name]) : `{${name}}`,
  );
}

export function translator(lang: Lang): T {
  const table = tables[lang];
  return (key, vars) => format(table[key] ?? key, vars);
}

export function hasKey(key: string): key is Key {
  return key in ru;
}
