/** The classic-script build (`beckon-sig.js`): defines the global `Signal`. */
import { Signal } from "./signal.js";

(globalThis as { Signal?: unknown }).Signal = Signal;
