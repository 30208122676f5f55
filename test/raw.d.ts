/** Vite's `?raw` imports (the tests read documentation pages as text). */
declare module '*?raw' {
  const text: string
  export default text
}
