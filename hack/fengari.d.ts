// Types for the part of fengari (a Lua 5.3 VM in JavaScript) that hack/gitops-health.test.ts
// uses. The package ships no types and there is no @types/fengari.
declare module "fengari" {
  /** A Lua string: bytes. */
  export type LuaString = Uint8Array;
  /** A Lua state (`lua_State *`); opaque to JavaScript. */
  export interface LuaState {
    readonly __fengariLuaState: never;
  }
  /** A C function as fengari runs it: takes the state, returns the number of results. */
  export type LuaCFunction = (L: LuaState) => number;

  interface Lua {
    readonly LUA_OK: number;
    readonly LUA_TNIL: number;
    readonly LUA_TSTRING: number;
    readonly LUA_TTABLE: number;
    lua_close(L: LuaState): void;
    lua_createtable(L: LuaState, narr: number, nrec: number): void;
    lua_getfield(L: LuaState, index: number, key: LuaString): number;
    lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number;
    lua_pop(L: LuaState, n: number): void;
    lua_pushboolean(L: LuaState, b: boolean): void;
    lua_pushinteger(L: LuaState, n: number): void;
    lua_pushnil(L: LuaState): void;
    lua_pushnumber(L: LuaState, n: number): void;
    lua_pushstring(L: LuaState, s: LuaString): LuaString;
    lua_rawseti(L: LuaState, index: number, n: number): void;
    lua_setfield(L: LuaState, index: number, key: LuaString): void;
    lua_setglobal(L: LuaState, name: LuaString): void;
    lua_tojsstring(L: LuaState, index: number): string;
    lua_type(L: LuaState, index: number): number;
  }

  interface LuaAuxLib {
    luaL_loadstring(L: LuaState, s: LuaString): number;
    luaL_newstate(): LuaState;
    luaL_requiref(L: LuaState, modname: LuaString, openf: LuaCFunction, glb: number): void;
  }

  interface LuaLib {
    readonly LUA_LOADLIBNAME: string;
    readonly LUA_OSLIBNAME: string;
    readonly LUA_TABLIBNAME: string;
    luaopen_base: LuaCFunction;
    luaopen_os: LuaCFunction;
    luaopen_package: LuaCFunction;
    luaopen_table: LuaCFunction;
  }

  interface Fengari {
    readonly lua: Lua;
    readonly lauxlib: LuaAuxLib;
    readonly lualib: LuaLib;
    readonly to_luastring: (s: string) => LuaString;
    readonly to_jsstring: (s: LuaString) => string;
  }

  const fengari: Fengari;
  export default fengari;
}
