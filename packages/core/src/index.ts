export * from "./errors.js"; export * from "./message.js";
